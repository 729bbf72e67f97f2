#!/usr/bin/env bash
# scripts/device_check.sh and scripts/bench_compare.sh on a CPU machine, against fake binaries: the GPU
# session is rare and short, so a script error must show here, not there. Fakes stand for nvidia-smi, nvcc,
# compute-sanitizer, python3 (bench_pytorch.py) and the carried build (.device/bin), printing lines in the
# real programs' formats. Three runs:
#   1. every step: each passes, the logs hold the whole tables (the B4 row, the largest-batch row);
#   2. a TIME_BUDGET that runs out during end_to_end, whose effnet_bench hangs: the step fails, the summary
#      is written, and nothing the step started is left running;
#   3. a TIME_BUDGET too small to start anything: every step fails unstarted, the summary is written.
#
#   tests/device_check_dry_run.sh      (CTest: device_check.dry_run)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
marker="effnet_dry_run_hang_$$"
# Processes whose command line holds the marker (from /proc: no procps needed; "han[g]" keeps grep from
# finding itself).
hung() { grep -ls "effnet_dry_run_han[g]_$$" /proc/[0-9]*/cmdline 2>/dev/null | sed 's|/proc/\([0-9]*\)/cmdline|\1|'; }
trap 'for pid in $(hung); do kill -9 "$pid" 2>/dev/null; done; rm -rf "$work"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# A copy of what the scripts read, with the fakes.
mkdir -p "$work/scripts" "$work/configs" "$work/.device/bin" "$work/fakebin"
cp "$repo/scripts/device_check.sh" "$repo/scripts/bench_compare.sh" "$work/scripts/"
cp "$repo/configs/mask_b4_recipe.toml" "$work/configs/"
fake() {  # fake PATH_IN_WORK BODY
  printf '#!/usr/bin/env bash\n%s\n' "$2" >"$work/$1"
  chmod +x "$work/$1"
}
fake fakebin/nvidia-smi 'echo "NVIDIA H100 80GB HBM3, 580.159.04, 81559 MiB, 9.0"'
fake fakebin/nvcc 'echo "Cuda compilation tools, release 13.0"; echo "Build fake"'
fake fakebin/compute-sanitizer 'while [[ $1 == -* ]]; do [[ $1 == --tool || $1 == --error-exitcode || $1 == --print-limit ]] && shift; shift; done; "$@"'
fake .device/bin/effnet_tests 'echo "[==========] 881 tests ran."; echo "[  PASSED  ] 881 tests."'
fake .device/bin/effnet_demo 'echo "accuracy 0.990"'
fake .device/bin/effnet_make_demo 'mkdir -p "$1" && echo "made $1"'
fake .device/bin/effnet_train 'echo "best validation macro-F1 0.5000 at epoch 1"'
fake .device/bin/effnet_bench "$(cat <<EOF
args=" \$* "
field() { sed -n "s/.* --\$1 \\([^ ]*\\) .*/\\1/p" <<<"\$args"; }
p=\$(field precision); batch=\$(field batch)
[[ \$args == *" --tf32 "* ]] && p+=+tf32; [[ \$args == *" --channels-last "* ]] && p+=+cl
[[ \$args == *" --fused "* ]] && p+=+fused
if [[ \$args == *" --data "* ]]; then
  [[ -n \${FAKE_HANG:-} ]] && exec -a $marker sleep 300
  echo "effnet_bench \$p \$(field model) train \$(field crop) batch \$batch on cuda from x, 8 workers: 100.0 ms a step over 10 steps, 3% of it waiting for the loader, 320.0 images/s, peak memory 9000 MiB"
  exit 0
fi
if [[ \$args == *" --max-batch "* ]]; then
  echo "effnet_bench --max-batch: batch 128 fits, 20000 MiB" >&2
  echo "effnet_bench --max-batch: largest batch 408 in 81000 MiB (batch: peak held; 128: 20000 MiB, 416: out of memory)"
  batch=408
fi
echo "effnet_bench \$p \$(field model) train 380x380 batch \$batch on cuda: median step 150.0 ms (min 149.0, max 151.0), 213.3 images/s, peak memory 20000 MiB, held for backward 15000 MiB"
EOF
)"
fake fakebin/python3 "$(cat <<'EOF'
[[ $1 == -c ]] && exit 0  # device_check.sh asks for site-packages
args=" ${*:2} "
field() { sed -n "s/.* --$1 \([^ ]*\) .*/\1/p" <<<"$args"; }
batch=$(field batch)
for v in $(tr , ' ' <<<"$(field variants)"); do
  if [[ $args == *" --data "* ]]; then
    echo "pytorch $v $(field model) train $(field crop) batch $batch on cuda from x, 8 workers: 90.0 ms a step over 10 steps, 2% of it waiting for the loader, 355.6 images/s, peak memory 9500 MiB"
    continue
  fi
  if [[ $args == *" --max-batch "* ]]; then
    echo "pytorch --max-batch: largest batch 296 in 80500 MiB (batch: peak held; 128: 30000 MiB, 304: out of memory)"
    batch=296
  fi
  echo "pytorch $v $(field model) train 380x380 batch $batch on cuda: median step 80.0 ms (min 79.0, max 81.0), 400.0 images/s, peak memory 22000 MiB, held for backward 16000 MiB [Adam (adamp not installed)]"
done
EOF
)"

check_run() {  # check_run NAME ENV... : runs device_check.sh in $work with the fakes, output in $work/NAME.txt
  local name=$1
  shift
  (cd "$work" && env PATH="$work/fakebin:$PATH" OUT="$work/$name" "$@" bash scripts/device_check.sh >"$work/$name.txt" 2>&1)
}

# 1. Every step.
check_run all
rc=$?
[[ $rc -eq 0 ]] || fail "the full run exited $rc: $(tail -n 12 "$work/all.txt")"
for s in tests demo bench_vs_pytorch profile profile_cudnn demo_data recipe end_to_end memcheck max_batch; do
  grep -Eq "^$s +PASS" "$work/all/summary.txt" 2>/dev/null || fail "step $s did not pass: $(grep "^$s" "$work/all/summary.txt")"
done
grep -q '^| model | input | batch | effnet | PyTorch' "$work/all/bench_vs_pytorch.log" || fail "bench_vs_pytorch.log lost its table header"
grep -q '^| efficientnet_b4 | 380x380 | 32 | fp32 213.3 (peak 20000 MiB, held 15000 MiB)' "$work/all/bench_vs_pytorch.log" ||
  fail "bench_vs_pytorch.log lost the B4 row"
grep -q '^| efficientnet_b0 | 224x224 | 64 |' "$work/all/bench_vs_pytorch.log" || fail "bench_vs_pytorch.log lost the B0 row"
grep -q 'at batch 408 | eager_bf16_cl 400.0 (peak 22000 MiB, held 16000 MiB) at batch 296 |' "$work/all/max_batch.log" ||
  fail "max_batch.log lost the largest-batch row"
grep -q 'effnet_bench --max-batch: batch 128 fits' "$work/all/max_batch.log" || fail "max_batch.log lost effnet's trials"
grep -q '^| efficientnet_b4 | 384x320, from the loader | 32 |' "$work/all/end_to_end.log" || fail "end_to_end.log lost its row"
[[ $(tr -cd '\000' <"$work/all/bench_vs_pytorch.log" | wc -c) -eq 0 ]] || fail "bench_vs_pytorch.log holds NUL bytes"

# 2. The budget runs out in end_to_end, whose effnet_bench hangs.
check_run hang FAKE_HANG=1 TIME_BUDGET=25 SKIP="tests demo bench_vs_pytorch profile profile_cudnn recipe memcheck max_batch"
rc=$?
[[ $rc -ne 0 ]] || fail "a step killed by TIME_BUDGET still gave exit status 0"
grep -Eq '^end_to_end +FAIL' "$work/hang/summary.txt" 2>/dev/null || fail "end_to_end is not a FAIL in the summary"
sleep 1
[[ -z $(hung) ]] || fail "the killed step left effnet_bench running"

# 3. Too little budget to start anything.
check_run none TIME_BUDGET=15 SKIP="tests demo"
rc=$?
[[ $rc -ne 0 ]] || fail "a check that ran nothing gave exit status 0"
grep -q 'bench_vs_pytorch FAIL not started' "$work/none/summary.txt" 2>/dev/null || fail "unstarted steps not in the summary"

if ((failures > 0)); then
  echo "device_check dry run: $failures failure(s); the full run's output:"
  cat "$work/all.txt"
  exit 1
fi
echo "device_check dry run: all three runs as expected"
