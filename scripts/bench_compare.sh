#!/usr/bin/env bash
# effnet against PyTorch + timm, side by side in one run on one machine: training images/s (with the peak
# GPU memory, and the memory held for backward: the activations) of the same model, input size and batch on
# synthetic data, timed the same way (median of the synchronized steps after warm-up; apps/effnet_bench.cpp,
# scripts/bench_pytorch.py). Prints a Markdown table with the machine, ready for docs/performance.md.
#
#   scripts/bench_compare.sh BIN_DIR cpu    # efficientnet_b0, 224x224, batch 8, threads = cores
#   scripts/bench_compare.sh BIN_DIR cuda   # efficientnet_b4 380x380 batch 32, efficientnet_b0 224x224 batch 64
#
# Environment:
#   PYTHON           with torch and timm (tools/reference/requirements.txt); default python3
#   STEPS            timed steps (default 10)
#   BENCH_PRECISIONS effnet's --precision values, one column each (default fp32); tf32 means
#                    --precision fp32 --tf32; suffixes add flags: +cl --channels-last, +fused --fused
#                    (bf16+cl+fused)
#   BENCH_VARIANTS   PyTorch's variants for every case (default on CUDA: eager fp32, eager AMP bf16
#                    channels-last and, for B4 only, torch.compile of the latter; on the CPU: eager fp32)
#   BENCH_EXTRA_CASE "MODEL SIZE BATCH": a third CUDA row against PyTorch's AMP (a large batch, say)
#   BENCH_CASES      "MODEL SIZE BATCH VARIANTS; ...": these rows instead of the defaults. BATCH "max" finds
#                    each framework's largest batch that fits (--max-batch, from 32 up in multiples of 8)
#                    and times it: e.g. BENCH_CASES="efficientnet_b4 380 max eager_bf16_cl"
#                    BENCH_PRECISIONS=bf16+cl+fused (scripts/device_check.sh's max_batch step)
#   BENCH_DROP_PATH  stochastic depth rate of the last block, both frameworks (default 0, timm's default)
#   BENCH_DATA       a competition-layout ROOT: every row trains end to end from the data loader (--data; the
#                    row's SIZE is the crop, HxW) with BENCH_WORKERS workers (default 8) instead of synthetic
#                    images, e.g. BENCH_CASES="efficientnet_b4 384x320 32 eager_bf16_cl"
#   BENCH_MAX_BATCH_START  where a "max" row's search starts (default 32)
#   BENCH_TIMEOUT    seconds each effnet_bench or bench_pytorch.py run may take (default: no limit); one that
#                    runs out is "failed" in its cell and the others still run
# Each program's output goes to stderr as it comes (a log keeps what a killed run printed).
# Both frameworks choose convolution algorithms by timing them (cudnn.benchmark; EFFNET_CUDNN_BENCHMARK=1).
# A ratio column compares each effnet precision with PyTorch's variant of the same precision.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
device=$2
python=${PYTHON:-python3}
steps=${STEPS:-10}
precisions=${BENCH_PRECISIONS:-fp32}
drop_path=${BENCH_DROP_PATH:-0}
threads=$(nproc)
export OMP_NUM_THREADS=$threads
export EFFNET_CUDNN_BENCHMARK=1

if [[ $device == cpu ]]; then
  cases=("efficientnet_b0 224 8 ${BENCH_VARIANTS:-eager_fp32}")
  machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $threads threads"
else
  cases=("efficientnet_b4 380 32 ${BENCH_VARIANTS:-eager_fp32,eager_bf16_cl,compile_bf16_cl}"
         "efficientnet_b0 224 64 ${BENCH_VARIANTS:-eager_fp32,eager_bf16_cl}")
  # e.g. BENCH_EXTRA_CASE="efficientnet_b4 380 96": one more row (a large batch), PyTorch's AMP only
  [[ -n ${BENCH_EXTRA_CASE:-} ]] && cases+=("$BENCH_EXTRA_CASE eager_bf16_cl")
  machine=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)
fi
if [[ -n ${BENCH_CASES:-} ]]; then
  IFS=';' read -r -a cases <<<"$BENCH_CASES"
fi
# Runs a program under BENCH_TIMEOUT (when set), its stdout also to stderr as it comes: through the
# inherited descriptor (tee /dev/stderr would reopen a log file and write over it from its start), and in
# the caller's process group (--foreground), so that a timeout around this script stops the program too.
run_bounded() {
  if [[ -n ${BENCH_TIMEOUT:-} ]]; then
    timeout --foreground --kill-after=10 "$BENCH_TIMEOUT" "$@" | tee >(cat >&2)
  else
    "$@" | tee >(cat >&2)
  fi
}
images_per_s() { sed -n 's/.*, \([0-9.]*\) images\/s.*/\1/p' <<<"$1"; }
timed_batch() { sed -n 's/.* batch \([0-9]*\) on .*/\1/p' <<<"$1"; }
memory() { sed -n 's/.*peak memory \([0-9]*\) MiB.*/\1/p' <<<"$1"; }
held() { sed -n 's/.*held for backward \([0-9]*\) MiB.*/\1/p' <<<"$1"; }
# images/s (peak memory, memory held for backward), and the batch where the row's batch is "max" (each
# framework's own largest)
cell() {
  local m
  m="$([[ -n $(memory "$1") ]] && echo -n "peak $(memory "$1") MiB")"
  [[ -n $(held "$1") ]] && m+="${m:+, }held $(held "$1") MiB"
  echo -n "$(images_per_s "$1")"
  [[ -n $m ]] && echo -n " ($m)"
  [[ $batch == max ]] && echo -n " at batch $(timed_batch "$1")"
  true
}
# The PyTorch variant an effnet precision is compared with.
peer() { case ${1%%+*} in fp32) echo eager_fp32 ;; bf16) echo eager_bf16_cl ;; esac; }  # none for tf32, fp16

settings="$steps timed steps after 3 warm-up, training (forward, CE, backward, AdamP), drop path $drop_path"
echo "Machine: $machine; $(date -u +%Y-%m-%d); $settings"
echo "Cells: images/s (peak memory; memory held for backward: the activations). Variants per row: $(for c in "${cases[@]}"; do echo -n "${c##* } "; done)"
echo
echo "| model | input | batch | effnet | PyTorch | effnet / PyTorch (same precision) |"
echo "|---|---|---:|---|---|---|"
failed=0  # a failed run leaves "failed" in its cell; the other rows are still measured
for c in "${cases[@]}"; do
  read -r model size batch variants <<<"$c"
  batch_flags=(--batch "$batch")
  [[ $batch == max ]] && batch_flags=(--batch "${BENCH_MAX_BATCH_START:-32}" --max-batch)
  input_flags=(--img-size "$size")
  [[ -n ${BENCH_DATA:-} ]] && input_flags=(--data "$BENCH_DATA" --crop "$size" --workers "${BENCH_WORKERS:-8}")
  declare -A speed=()
  ours_cells="" theirs_cells="" ratios=""
  for p in ${precisions//,/ }; do
    base=${p%%+*}
    flags=(--precision "$base")
    [[ $base == tf32 ]] && flags=(--precision fp32 --tf32)
    [[ $p == *+cl* ]] && flags+=(--channels-last)
    [[ $p == *+fused* ]] && flags+=(--fused)
    if ! out=$(run_bounded "$bin/effnet_bench" --model "$model" "${input_flags[@]}" "${batch_flags[@]}" \
                 --steps "$steps" --device "$device" --drop-path "$drop_path" "${flags[@]}"); then
      ours_cells+="$p failed; "
      failed=1
      continue
    fi
    line=$(tail -n 1 <<<"$out")
    speed[effnet_$p]=$(images_per_s "$line")
    ours_cells+="$p $(cell "$line"); "
  done
  # Captured first, so that its exit status counts.
  if ! theirs=$(run_bounded "$python" scripts/bench_pytorch.py --model "$model" "${input_flags[@]}" \
                  "${batch_flags[@]}" --steps "$steps" --device "$device" --drop-path "$drop_path" \
                  --variants "$variants" --threads "$threads"); then
    theirs_cells+="failed; "
    failed=1
  fi
  while read -r line; do
    [[ -z $line ]] && continue
    [[ $line == "pytorch --max-batch"* ]] && continue
    v=$(awk '{print $2}' <<<"$line")
    speed[$v]=$(images_per_s "$line")
    theirs_cells+="$v $(cell "$line"); "
  done <<<"$theirs"
  for p in ${precisions//,/ }; do
    v=$(peer "$p")
    [[ -n $v && -n ${speed[$v]:-} && -n ${speed[effnet_$p]:-} ]] && ratios+="$p: $(awk -v a="${speed[effnet_$p]}" -v b="${speed[$v]}" 'BEGIN { printf "%.2f", a / b }'); "
  done
  [[ $size == *x* ]] || size=${size}x$size
  echo "| $model | $size$([[ -n ${BENCH_DATA:-} ]] && echo ", from the loader") | $batch | ${ours_cells%; } | ${theirs_cells%; } | ${ratios%; } |"
  unset speed
done
exit $failed
