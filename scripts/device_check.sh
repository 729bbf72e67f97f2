#!/usr/bin/env bash
# The GPU machine's single command (H100/H200, nvcc 13, CMake, Ninja, PyTorch; no network; cuDNN and
# cuBLAS only as PyTorch's pip wheels). Prepare on the CPU machine with scripts/prepare_device.sh and carry
# .device/carry.tar.gz (unpacked into .device/ first). This script:
#   1. prints the card and driver, finds cuDNN/cuBLAS (pip wheels or the toolkit);
#   2. uses the carried build, or rebuilds from source with the carried GoogleTest if it does not run;
#   3. runs the whole test suite with the CUDA tests required (EFFNET_REQUIRE_CUDA=1: a skip is a failure);
#   4. runs the demo, EfficientNet training steps (B4 at 380x380, B0 at 224x224) with effnet_bench side by
#      side with PyTorch (scripts/bench_compare.sh), a per-kernel profile of B4's bf16 channels-last step
#      (and of the same step with every convolution in cuDNN),
#      one epoch of the recipe (B4, crop 384x320 of 512x384 demo photos, bf16) with effnet_train, and B4's
#      training end to end from the data loader on those photos, against PyTorch's DataLoader;
#   5. runs compute-sanitizer memcheck over the CUDA tests;
#   6. finds each framework's largest B4 batch at 380x380 and its speed (bf16 channels-last; --max-batch);
# and writes every log under $OUT (or ./device-logs). Exit status 0 only when every step passed.
#
# Environment: SKIP="memcheck recipe ..." leaves those steps out (to fit a lease: a second check after a fix
# may need only some); TIME_BUDGET=SECONDS bounds the whole check: each step gets at most the time left,
# and one with under 20 s left is not started (a FAIL: it did not run), so the summary is always written
# inside the budget; BENCH_VARIANTS and BENCH_PRECISIONS go to scripts/bench_compare.sh; RECIPE_PRECISION
# (default bf16) is the recipe step's --precision.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/device-logs}
mkdir -p "$OUT"
start=$(date +%s)
budget=${TIME_BUDGET:-0}
declare -a summary
# step NAME SECONDS COMMAND...: runs COMMAND for at most SECONDS (less when TIME_BUDGET has less left), logs
# to $OUT/NAME.log, records PASS/FAIL with seconds. One timeout per step: it stops the step's whole process
# group, so nothing the step started outlives it (a timeout nested inside would make a group of its own).
step() {
  local name=$1 limit=$2
  shift 2
  if [[ " ${SKIP:-} " == *" $name "* ]]; then
    summary+=("$(printf '%-16s SKIP (SKIP=%s)' "$name" "$SKIP")")
    return 0
  fi
  local t0 left rc
  t0=$(date +%s)
  if ((budget > 0)); then
    left=$((budget - (t0 - start)))
    if ((left < 20)); then
      summary+=("$(printf '%-16s FAIL not started: TIME_BUDGET=%s spent' "$name" "$budget")")
      return 1
    fi
    ((left < limit)) && limit=$left
  fi
  set -- timeout --kill-after=5 "$limit" "$@"
  echo "=== $name: $*"
  "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  tail -n 25 "$OUT/$name.log"
  summary+=("$(printf '%-16s %-4s %4ss' "$name" "$([[ $rc -eq 0 ]] && echo PASS || echo FAIL)" $(($(date +%s) - t0)))")
  return $rc
}

# The summary, always written (also when the build fails), then the exit status.
finish() {
  echo
  echo "=== device_check summary ($(head -n 2 "$OUT/gpu.txt" | tail -n 1))"
  printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
  echo "total $(($(date +%s) - start))s, status $status" | tee -a "$OUT/summary.txt"
  exit "$status"
}
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv | tee "$OUT/gpu.txt"
nvcc --version | tail -n 2 | tee -a "$OUT/gpu.txt"

# cuDNN and cuBLAS: the toolkit's lib64, then every pip wheel folder that holds one of them.
lib_dirs=()
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [[ -d $d ]] && lib_dirs+=("$d"); done
site=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
for s in $site; do
  while read -r f; do lib_dirs+=("$(dirname "$f")"); done < <(find "$s/nvidia" -maxdepth 4 \
    \( -name 'libcudnn.so.9' -o -name 'libcublas.so.1*' -o -name 'libcublasLt.so.1*' \) 2>/dev/null)
done
cudnn_dir=$(for d in "${lib_dirs[@]}"; do [[ -e $d/libcudnn.so.9 ]] && echo "$d" && break; done)
joined=$(printf '%s:' "${lib_dirs[@]}")
export LD_LIBRARY_PATH="$PWD/.device/lib:${joined%:}:${LD_LIBRARY_PATH:-}"
echo "cuDNN from: ${cudnn_dir:-not found}" | tee -a "$OUT/gpu.txt"

# The carried build, packed by scripts/prepare_device.sh.
[[ -f .device/carry.tar.gz ]] && tar -xzf .device/carry.tar.gz -C .device
bin=$PWD/.device/bin
if ! "$bin/effnet_tests" --gtest_list_tests >/dev/null 2>"$OUT/carried.log"; then
  echo "carried build does not run here ($(head -n 1 "$OUT/carried.log")); building from source"
  cudnn_root=$(dirname "${cudnn_dir:-/nonexistent/lib}")
  # pip's cuDNN wheel ships libcudnn.so.9 but no libcudnn.so link for the linker.
  [[ -e $cudnn_dir/libcudnn.so ]] || ln -sf libcudnn.so.9 "$cudnn_dir/libcudnn.so" 2>/dev/null || true
  step build 900 bash -c "cmake -S . -B build-gpu -G Ninja -DEFFNET_CUDA=ON -DCUDNN_ROOT=$cudnn_root \
      -DEFFNET_GTEST_SOURCE=$PWD/.device/googletest -DEFFNET_THIRD_PARTY_INCLUDE=$PWD/.device/include \
      && cmake --build build-gpu -j $(nproc)" || { status=1; finish; }
  bin=$PWD/build-gpu
  cp build-gpu/tests/effnet_tests build-gpu/apps/effnet_{demo,train,bench,make_demo} "$bin/" 2>/dev/null || true
fi

export EFFNET_REQUIRE_CUDA=1
step tests 240 "$bin/effnet_tests" --gtest_output="xml:$OUT/tests.xml" || status=1
skipped=$(grep -c '^\[  SKIPPED \]' "$OUT/tests.log" 2>/dev/null || true)
if [[ ${skipped:-0} -ne 0 ]]; then
  echo "FAIL: $skipped skipped test lines (every test must run on a GPU machine)"
  status=1
fi
step demo 120 "$bin/effnet_demo" --device cuda || status=1
# EfficientNet training steps (B4 at 380x380, B0 at 224x224; forward, cross-entropy, backward, AdamP) side by
# side with PyTorch + timm on this card: the Markdown table for docs/performance.md is the log's tail.
step bench_vs_pytorch 420 env PYTHON=python3 BENCH_PRECISIONS="${BENCH_PRECISIONS:-fp32,tf32,bf16+cl,bf16+cl+fused}" \
  scripts/bench_compare.sh "$bin" cuda || status=1
# Where B4's bf16 channels-last fused training step spends its GPU time, per kernel entry
# (tensor/cuda/profiler.h).
# EFFNET_CUDNN_LOG=1 adds cuDNN's choice (algorithm, math) per convolution to the log.
step profile 180 env EFFNET_PROFILE=1 EFFNET_CUDNN_BENCHMARK=1 EFFNET_CUDNN_LOG=1 \
  "$bin/effnet_bench" --model efficientnet_b4 \
  --img-size 380 --batch 32 --steps 3 --precision bf16 --channels-last --fused --device cuda || status=1
# The same step with every convolution in cuDNN (EFFNET_CUDNN_ONLY=1), instead of effnet's depthwise kernels
# and cuBLAS's 1x1 products (tensor/cuda/depthwise_conv.cu, pointwise_conv.cpp): both, per kernel entry, on
# one card.
step profile_cudnn 120 env EFFNET_PROFILE=1 EFFNET_CUDNN_BENCHMARK=1 EFFNET_CUDNN_ONLY=1 \
  "$bin/effnet_bench" --model efficientnet_b4 \
  --img-size 380 --batch 32 --steps 3 --precision bf16 --channels-last --fused --device cuda || status=1
# A short run of the recipe (configs/mask_b4_recipe.toml) on demo data at the competition's photo size.
demo=$(mktemp -d)
# The recipe and end_to_end steps train on these photos: skipping demo_data skips them too.
[[ " ${SKIP:-} " == *" demo_data "* ]] && SKIP="${SKIP:-} recipe end_to_end"
step demo_data 120 "$bin/effnet_make_demo" "$demo/data" --people 60 --size 512x384 || status=1
step recipe 300 "$bin/effnet_train" --config configs/mask_b4_recipe.toml --data "$demo/data" --epochs 1 \
  --out "$demo/run" --precision "${RECIPE_PRECISION:-bf16}" || status=1
# B4 training end to end from the data loader (8 workers decoding and augmenting those photos, crop
# 384x320), effnet against PyTorch's DataLoader: the loader's share of the step.
step end_to_end 300 env PYTHON=python3 BENCH_DATA="$demo/data" BENCH_WORKERS=8 \
  BENCH_CASES="efficientnet_b4 384x320 32 eager_bf16_cl" BENCH_PRECISIONS=bf16+cl+fused \
  scripts/bench_compare.sh "$bin" cuda || status=1

# After the measurements, so that a slow sanitizer run cannot crowd them out within a lease.
# The out-of-memory test makes cudaMalloc fail on purpose, which memcheck would count as an error. The
# whole-model tests are left out too: they run the same kernels as the layer tests, 100 times slower here,
# and so are the 2^31-element one (the chunked path runs under memcheck on small tensors) and the
# depthwise kernels at B4's first-stage size (smaller images run the same code but a grid-stride loop's
# second round).
step memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
  "$bin/effnet_tests" --gtest_filter='*Cuda*:-CudaMemory.OutOfMemoryNamesWhatWasAskedAndWhatIsHeld:*TimmParityCuda*efficientnet*:*TimmParityFusedCuda*efficientnet*:EfficientNetCuda.*:FusedEfficientNetCuda.*:CudaChunks.OperandsOfMoreThan2To31ElementsRunInChunks:DepthwiseCuda.B4FirstStageImages' \
  || status=1

# Last, the longest and least predictable: the largest B4 batch at 380x380 that each framework fits on this
# card, and its speed: effnet's bf16 channels-last fused step against PyTorch's AMP channels-last (both
# search the same grid from batch 128, train/batch_fit.h, each within MAX_BATCH_TIMEOUT seconds, default
# 240; the trials take cuDNN's heuristic algorithms, the timed batch the timed search; 5 timed steps, which
# take seconds each at such batches).
max_batch_timeout=${MAX_BATCH_TIMEOUT:-240}
if ((budget > 0)); then  # half of what is left each, so that PyTorch's search gets its turn
  left=$((budget - ($(date +%s) - start) - 10))
  ((left / 2 < max_batch_timeout)) && max_batch_timeout=$((left / 2))
fi
step max_batch 540 env PYTHON=python3 STEPS=5 BENCH_CASES="efficientnet_b4 380 max eager_bf16_cl" \
  BENCH_PRECISIONS=bf16+cl+fused BENCH_MAX_BATCH_START=128 BENCH_TIMEOUT="$max_batch_timeout" \
  scripts/bench_compare.sh "$bin" cuda || status=1

finish
