#!/usr/bin/env bash
# Configures and builds effnet into build/ (CUDA backend included when nvcc, cuDNN and cuBLAS are found).
# Extra arguments go to CMake, e.g. scripts/build.sh -DEFFNET_CUDA=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -d /usr/local/cuda/bin && ":$PATH:" != *":/usr/local/cuda/bin:"* ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
build_dir=${EFFNET_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DEFFNET_WERROR=ON "$@"
cmake --build "$build_dir" -j "$(nproc)"
