#!/usr/bin/env bash
# effnet against PyTorch + timm, side by side in one run on one machine: training images/s (and peak GPU
# memory) of the same model, input size and batch on synthetic data, timed the same way (median of the
# synchronized steps after warm-up; apps/effnet_bench.cpp, scripts/bench_pytorch.py). Prints a Markdown
# table with the machine, ready for docs/performance.md.
#
#   scripts/bench_compare.sh BIN_DIR cpu    # efficientnet_b0, 224x224, batch 8, threads = cores
#   scripts/bench_compare.sh BIN_DIR cuda   # efficientnet_b4 380x380 batch 32, efficientnet_b0 224x224 batch 64
# PYTHON (default python3) must have torch and timm (tools/reference/requirements.txt); STEPS (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1
device=$2
python=${PYTHON:-python3}
steps=${STEPS:-10}
threads=$(nproc)
export OMP_NUM_THREADS=$threads

if [[ $device == cpu ]]; then
  cases=("efficientnet_b0 224 8")
  variants=eager_fp32
  machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $threads threads"
else
  cases=("efficientnet_b4 380 32" "efficientnet_b0 224 64")
  variants=eager_fp32,eager_bf16_cl,compile_bf16_cl
  machine=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)
fi
images_per_s() { sed -n 's/.*, \([0-9.]*\) images\/s.*/\1/p' <<<"$1"; }
memory() { sed -n 's/.*peak memory \([0-9]*\) MiB.*/\1/p' <<<"$1"; }

echo "Machine: $machine; $(date -u +%Y-%m-%d); $steps timed steps after 3 warm-up, training (forward, CE, backward, AdamP)"
echo
echo "| model | input | batch | effnet fp32 | PyTorch ${variants//,/ | PyTorch } | effnet / PyTorch eager fp32 |"
echo "|---|---|---:|---:|$(sed 's/[^,]*/---:/g; s/,/|/g' <<<"$variants")|---:|"
for c in "${cases[@]}"; do
  read -r model size batch <<<"$c"
  ours=$("$bin/effnet_bench" --model "$model" --img-size "$size" --batch "$batch" --steps "$steps" --device "$device")
  echo "$ours" >&2
  row="| $model | ${size}x$size | $batch | $(images_per_s "$ours")"
  [[ -n $(memory "$ours") ]] && row+=" ($(memory "$ours") MiB)"
  first=""
  while read -r line; do
    echo "$line" >&2
    row+=" | $(images_per_s "$line")"
    [[ -n $(memory "$line") ]] && row+=" ($(memory "$line") MiB)"
    [[ -z $first ]] && first=$(images_per_s "$line")
  done < <("$python" scripts/bench_pytorch.py --model "$model" --img-size "$size" --batch "$batch" --steps "$steps" \
             --device "$device" --variants "$variants" --threads "$threads")
  ratio=$(awk -v a="$(images_per_s "$ours")" -v b="$first" 'BEGIN { printf "%.2f", a / b }')
  echo "$row | $ratio |"
done
