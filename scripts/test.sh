#!/usr/bin/env bash
# The test command of the README and of CI: install dependencies, build, run every test.
# On a machine without a GPU the CUDA tests are compiled and then skipped at run time, with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh "$@"
# One test at a time: ctest runs each test in its own process, and effnet's OpenMP loops already use every
# core. Two such processes on the same cores wait for each other at every parallel loop's barrier: on 2
# cores, with -j 2, the end-to-end prediction tests took 70-100 s each instead of 2-5 s, and the whole run 23
# minutes; with -j 1 it takes under 2.
ctest --test-dir "${EFFNET_BUILD_DIR:-build}" --output-on-failure -j 1
