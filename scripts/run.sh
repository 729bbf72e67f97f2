#!/usr/bin/env bash
# The run command of the README: install dependencies, build, make the synthetic demo dataset (once), and
# train EfficientNet-B0 on it with configs/demo.toml (on the CPU; add --device cuda on a GPU machine).
# Extra arguments go to effnet_train, e.g. scripts/run.sh --epochs 3
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh -DEFFNET_BUILD_TESTS=OFF
build=${EFFNET_BUILD_DIR:-build}
[[ -d demo_data ]] || "$build"/apps/effnet_make_demo demo_data
"$build"/apps/effnet_train --config configs/demo.toml --data demo_data --out "runs/demo-$(date +%Y%m%d-%H%M%S)" "$@"
