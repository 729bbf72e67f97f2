#!/usr/bin/env bash
# The test command of the README and of CI: install dependencies, build, run every test.
# On a machine without a GPU the CUDA tests are compiled and then skipped at run time, with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh "$@"
ctest --test-dir "${EFFNET_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
