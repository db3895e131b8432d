#!/usr/bin/env bash
# On a lent GPU machine, with the CUDA builds carried (scripts/build-cuda.sh makes
# target/cuda/release/{daa,parity}):
#   1. the PyTorch parity tests on cuda:0 (forward within 1e-5, one step's loss and every
#      gradient within 1e-4, BatchNorm statistics): the pass/fail check;
#   2. the smoke experiments on cuda:0 and on cpu, test AUCs side by side (reported, not
#      judged: cuBLAS sums in another order, and on the tiny smoke data, AUCs near 0.5,
#      that float noise moves a trained model's AUC by a few hundredths);
#   3. bit-identical reruns: each backbone trained twice (smoke profile, source pretraining
#      included, fresh directories) with each `train.kernels`, model digests compared:
#      the pass/fail check of determinism on CUDA;
#   4. a training step per backbone on the GPU beside PyTorch on the same GPU: portable
#      kernels, daa's kernels, and with CUDA tunings off and on (A/B of the cheap fixes:
#      runs use events and pool; uploads is measured before it becomes a default).
#   5. with GPU_CHECK_PAPER=1 (minutes: it generates the paper-sized synthetic domains
#      first): one source-pretraining epoch of MMoE at the paper profile, timed, and the
#      throughput of runs sharing the GPU (9 cpu-profile runs with --jobs 1 and 4).
# Writes $OUT/gpu-check.md. GPU_CHECK_BENCH_STEPS (default 10) sets the bench's steps.
#
#   scripts/gpu-check.sh [path/to/daa [path/to/parity]]   # one call, well inside 10 minutes
# From the device tool: run scripts/gpu-check.sh with carry ["target/cuda/carry"].
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Builds carried as scripts/build-cuda.sh packs them (target/cuda/carry/*.xz) are unpacked.
for built in daa parity; do
  packed="$repo/target/cuda/carry/$built.xz"
  if [ -f "$packed" ] && [ ! -x "$repo/target/cuda/release/$built" ]; then
    mkdir -p "$repo/target/cuda/release"
    xz -dc "$packed" > "$repo/target/cuda/release/$built"
    chmod +x "$repo/target/cuda/release/$built"
  fi
done
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

{ echo; echo "## Bit-identical reruns on cuda:0 (last.safetensors digests)"; echo
  echo "| backbone | kernels | first run | second run | equal |"; echo "|---|---|---|---|---|"; } >> "$report"
for backbone in sharedbottom singletask omoe mmoe ple aitm metaheac; do
  for kernels in portable device; do
    digests=()
    for attempt in 1 2; do
      dir="reruns-$backbone-$kernels-$attempt"
      run run "$repo/configs/${backbone}_nl.toml" --profile smoke --set train.device=cuda:0 \
        --set "train.kernels=$kernels" --set "output.runs_dir='$dir'" > /dev/null || status=1
      model="$(find "$work/$dir" -name last.safetensors | head -1)"
      digests+=("$( [ -n "$model" ] && sha256sum "$model" | cut -c1-16 || echo missing)")
    done
    equal=no; [ "${digests[0]}" = "${digests[1]}" ] && [ "${digests[0]}" != missing ] && equal=yes
    [ $equal = yes ] || status=1
    echo "| $backbone | $kernels | ${digests[0]} | ${digests[1]} | $equal |" >> "$report"
  done
done

steps="${GPU_CHECK_BENCH_STEPS:-10}"
bench() {
  BENCH_PYTHON="$python" BENCH_TORCH_SCRIPT="$repo/tools/torch_step_bench.py" \
    "$repo/scripts/gpu-env.sh" "$daa" --registry "$repo/registry" bench step --device cuda:0 --steps "$steps" "$@" >> "$report" 2>&1 || status=1
}
for variant in "--kernels portable" "--kernels device" "--kernels portable --cuda-tunings none" \
               "--kernels portable --cuda-tunings pool" "--kernels portable --cuda-tunings events" \
               "--kernels portable --cuda-tunings events,pool,uploads"; do
  { echo; echo "## Training step: $variant"; echo; echo '```'; } >> "$report"
  # shellcheck disable=SC2086
  bench $variant
  echo '```' >> "$report"
done
if [ "${GPU_CHECK_PAPER:-0}" = 1 ]; then
  { echo; echo "## Paper profile: one source-pretraining epoch of MMoE on cuda:0 (daa's kernels)"
    echo; echo '```'; } >> "$report"
  start=$(date +%s)
  run run "$repo/configs/mmoe_nl.toml" --profile paper --set train.device=cuda:0 --set train.kernels=device \
    --set "output.runs_dir='paper'" --stop-pretraining-after 1 >> "$report" 2>&1 || status=1
  echo "wall $(( $(date +%s) - start )) s, data generation included" >> "$report"
  echo '```' >> "$report"
  # Several runs sharing the GPU: table3's MMoE/NL cells (cpu profile, 9 runs) one at a
  # time and four at a time, results bit-identical either way.
  { echo; echo "## Runs sharing cuda:0: table3 --profile cpu --only mmoe/nl"; echo; echo '```'; } >> "$report"
  for jobs in 1 4; do
    start=$(date +%s)
    run reproduce table3 --profile cpu --only mmoe/nl --jobs $jobs --set train.device=cuda:0 \
      --set train.kernels=device --set "output.runs_dir='share-$jobs'" --out "$work/share-out-$jobs" \
      > /dev/null 2>&1 || status=1
    echo "--jobs $jobs: $(( $(date +%s) - start )) s" >> "$report"
  done
  echo '```' >> "$report"
fi
cat "$report"
exit $status
