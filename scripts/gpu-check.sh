#!/usr/bin/env bash
# On a lent GPU machine, with the CUDA builds carried (scripts/build-cuda.sh makes
# target/cuda/release/{daa,parity}):
#   1. the PyTorch parity tests on cuda:0 (forward within 1e-5, one step's loss and every
#      gradient within 1e-4, BatchNorm statistics): the pass/fail check;
#   2. the smoke experiments on cuda:0 and on cpu, test AUCs side by side (reported, not
#      judged: cuBLAS sums in another order, and on the tiny smoke data, AUCs near 0.5,
#      that float noise moves a trained model's AUC by a few hundredths);
#   3. a training step per backbone on the GPU beside PyTorch on the same GPU.
# Writes $OUT/gpu-check.md.
#
#   scripts/gpu-check.sh [path/to/daa [path/to/parity]]   # one call, well inside 10 minutes
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
daa="$(realpath "${1:-$repo/target/cuda/release/daa}")"
parity="$(realpath "${2:-$repo/target/cuda/release/parity}")"
out="${OUT:-$repo/gpu-check}"
python="${BENCH_PYTHON:-python3}"
mkdir -p "$out"
work="$(mktemp -d)"
run() { (cd "$work" && "$repo/scripts/gpu-env.sh" "$daa" --registry "$repo/registry" -q "$@"); }
report="$out/gpu-check.md"
echo "# GPU check ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))" > "$report"
status=0

{ echo; echo "## PyTorch parity on cuda:0"; echo; echo '```'; } >> "$report"
PARITY_DEVICE=cuda:0 "$repo/scripts/gpu-env.sh" "$parity" --test-threads 1 >> "$report" 2>&1 || status=1
echo '```' >> "$report"

{ echo; echo "## Smoke runs"; echo; echo "| method | task | cpu AUC | cuda:0 AUC |"; echo "|---|---|---|---|"; } >> "$report"
for method in finetune daa; do
  for device in cpu cuda:0; do
    run run "$repo/configs/mmoe_nl.toml" --profile smoke --set adapt.method=$method --set "train.device=$device" \
      --set "output.runs_dir='runs-$device'" > "$work/$method-$device.txt" || status=1
  done
  for task in click conversion; do
    cpu=$(grep -E "^\s+$task\s" "$work/$method-cpu.txt" | awk '{print $2}')
    gpu=$(grep -E "^\s+$task\s" "$work/$method-cuda:0.txt" | awk '{print $2}')
    echo "| $method | $task | $cpu | $gpu |" >> "$report"
  done
done

{ echo; echo "## Training step"; echo; echo '```'; } >> "$report"
BENCH_PYTHON="$python" BENCH_TORCH_SCRIPT="$repo/tools/torch_step_bench.py" \
  "$repo/scripts/gpu-env.sh" "$daa" --registry "$repo/registry" bench step --device cuda:0 --steps 10 >> "$report" 2>&1 || status=1
echo '```' >> "$report"
cat "$report"
exit $status
