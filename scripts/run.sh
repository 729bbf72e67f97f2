#!/usr/bin/env bash
# The run command of the README: install dependencies, build, run the main job.
# Until effnet_train exists (it arrives with the training issue) the main job is effnet_demo, which trains
# a small classifier with the core library (tensors, autograd, the CPU or CUDA backend).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh -DEFFNET_BUILD_TESTS=OFF
"${EFFNET_BUILD_DIR:-build}"/apps/effnet_demo "$@"
