#!/usr/bin/env bash
# On a lent GPU machine, with the CUDA-built binary carried (scripts/build-cuda.sh, then
# carry target/cuda/release/daa): runs the smoke experiments on cuda:0 and on cpu and
# compares test AUCs (tolerance GPU_CHECK_TOLERANCE, default 1e-3), then times a training
# step per backbone on the GPU beside PyTorch on the same GPU. Writes $OUT/gpu-check.md.
#
#   scripts/gpu-check.sh [path/to/daa]      # one prepared call, well inside 10 minutes
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
daa="${1:-$repo/target/cuda/release/daa}"
out="${OUT:-$repo/gpu-check}"
tolerance="${GPU_CHECK_TOLERANCE:-1e-3}"
python="${BENCH_PYTHON:-/opt/torch/.venv/bin/python}"
mkdir -p "$out"
work="$(mktemp -d)"
run() { (cd "$work" && "$repo/scripts/gpu-env.sh" "$daa" --registry "$repo/registry" -q "$@"); }
report="$out/gpu-check.md"
echo "# GPU check ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))" > "$report"
echo >> "$report"
echo "| method | task | cpu AUC | cuda:0 AUC | difference |" >> "$report"
echo "|---|---|---|---|---|" >> "$report"
status=0
for method in finetune daa; do
  for device in cpu cuda:0; do
    run run "$repo/configs/mmoe_nl.toml" --profile smoke --set adapt.method=$method --set "train.device=$device" \
      --set "output.runs_dir='runs-$device'" > "$work/$method-$device.txt"
  done
  for task in click conversion; do
    cpu=$(grep -E "^\s+$task\s" "$work/$method-cpu.txt" | awk '{print $2}')
    gpu=$(grep -E "^\s+$task\s" "$work/$method-cuda:0.txt" | awk '{print $2}')
    diff=$("$python" -c "print(abs($cpu - $gpu))")
    echo "| $method | $task | $cpu | $gpu | $diff |" >> "$report"
    "$python" -c "import sys; sys.exit(0 if $diff <= $tolerance else 1)" || status=1
  done
done
echo >> "$report"
echo '```' >> "$report"
BENCH_PYTHON="$python" BENCH_TORCH_SCRIPT="$repo/tools/torch_step_bench.py" \
  "$repo/scripts/gpu-env.sh" "$daa" bench step --device cuda:0 --steps 10 >> "$report" 2>&1 || status=1
echo '```' >> "$report"
cat "$report"
exit $status
