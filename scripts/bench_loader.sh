#!/usr/bin/env bash
# Data-loader speed, effnet against PyTorch, on one competition-layout folder: runs `effnet_bench --loader`
# and scripts/bench_loader_pytorch.py with the same settings and prints one table with the ratio.
#
#   scripts/bench_loader.sh ROOT [--workers 1,2] [--crop 384x320] [--batch 32] [--epochs 3]
#
# EFFNET_BUILD_DIR (default build) holds effnet_bench; PYTHON (default python3) needs torch, torchvision
# and pillow. Both runs read the files from the page cache: the script reads every file once first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 ]]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
root=$1
shift
workers=1,2 crop=384x320 batch=32 epochs=3
while [[ $# -gt 0 ]]; do
  case $1 in
    --workers) workers=$2 ;;
    --crop) crop=$2 ;;
    --batch) batch=$2 ;;
    --epochs) epochs=$2 ;;
    *) echo "bench_loader.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
bench=${EFFNET_BUILD_DIR:-build}/apps/effnet_bench
python=${PYTHON:-python3}
[[ -x $bench ]] || { echo "bench_loader.sh: $bench not built (scripts/build.sh)" >&2; exit 1; }

find "$root/train" -type f -exec cat {} + > /dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
settings=(--workers "$workers" --crop "$crop" --batch "$batch" --epochs "$epochs")
"$bench" --loader --data "$root" "${settings[@]}" | tee "$out/effnet"
"$python" scripts/bench_loader_pytorch.py "$root" "${settings[@]}" | tee "$out/torch"

echo
echo "| workers | effnet images/s | PyTorch images/s | effnet / PyTorch |"
echo "|---:|---:|---:|---:|"
# Lines "workers N: X images/s ..." from both, joined on N.
awk '/^workers [0-9]+:/ {
       n = $2; sub(":", "", n); seen[n] = 1
       if (FILENAME ~ /effnet$/) e[n] = $3; else t[n] = $3
     }
     END { for (n in seen) printf "| %s | %.1f | %.1f | %.2f |\n", n, e[n], t[n], (t[n] > 0 ? e[n] / t[n] : 0) }' \
  "$out/effnet" "$out/torch" | sort -t'|' -k2 -n
