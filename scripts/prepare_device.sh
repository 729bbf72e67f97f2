#!/usr/bin/env bash
# Run on the CPU machine before a GPU session: builds effnet with CUDA for sm_90 into .device/ (ignored by
# git, carried to the GPU machine), with what that machine lacks: the GPU machines have nvcc, CMake, Ninja
# and PyTorch's CUDA wheels but none of Debian's packages (no GoogleTest, no OpenBLAS).
#   .device/bin        effnet_tests and the apps, built here
#   .device/lib        the shared libraries they need that the GPU machine may lack (OpenBLAS, libgomp, ...)
#   .device/googletest GoogleTest's sources and .device/include CLI11's headers, so device_check.sh can
#                      rebuild there if the carried build does not run (another glibc, say)
# All four packed in .device/carry.tar.gz (gzip, which every machine has, makes them about a quarter of
# their size: a call carries at most 64 MiB, and libeffnet.so alone is over 40 MiB). Then, in the device
# tool: run scripts/device_check.sh with carry [".device/carry.tar.gz"]; it unpacks the archive first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
build=.device/build
# One shared libeffnet (its CUDA kernels once, not in every binary) and OpenBLAS linked in statically
# keep what travels under the device tool's 64 MiB.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEFFNET_CUDA=ON -DEFFNET_WERROR=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_SHARED_LIBS=ON \
  -DEFFNET_OPENBLAS_LIBRARY=/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.a
cmake --build "$build" -j "$(nproc)"

rm -rf .device/bin .device/lib .device/googletest .device/include
mkdir -p .device/bin .device/lib .device/include
cp "$build"/tests/effnet_tests "$build"/apps/effnet_{demo,train,bench,make_demo} .device/bin/
cp "$build"/libeffnet.so .device/lib/
strip --strip-debug .device/bin/* .device/lib/libeffnet.so
# Shared libraries the GPU machine may lack (OpenBLAS and its Fortran runtime, libgomp). Not glibc, not
# the C++ runtime (the machine's own is newer and its cuDNN may need it), not CUDA's (they are there).
ldd .device/bin/effnet_tests .device/lib/libeffnet.so | awk '/=> \// {print $3}' |
  grep -Ev '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so|libcu|libnv|libeffnet' |
  sort -u |
  while read -r lib; do cp -L "$lib" .device/lib/; done
cp -r /usr/src/googletest .device/googletest
cp -r /usr/include/CLI /usr/include/stb /usr/include/toml++ .device/include/
du -sh .device/bin .device/lib .device/googletest .device/include
tar -czf .device/carry.tar.gz -C .device bin lib googletest include
du -sh .device/carry.tar.gz
