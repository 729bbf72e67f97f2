#!/usr/bin/env bash
# Installs what building and testing effnet needs on Debian 12 (and Ubuntu): a C++20 compiler, CMake,
# Ninja, GoogleTest, OpenBLAS, CLI11 (command-line flags), toml++ (configs) and stb (image decoding).
# The CUDA toolkit (nvcc, cuBLAS, cuDNN) is optional: when it is installed in /usr/local/cuda, the CUDA
# backend is compiled too.
set -euo pipefail

packages=(g++ cmake ninja-build libgtest-dev libopenblas-openmp-dev libcli11-dev libstb-dev libtomlplusplus-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
