#!/usr/bin/env bash
# Builds `daa --features cuda` on a machine without a GPU or a system CUDA, from PyPI's
# CUDA 13.0 toolkit wheels (REFERENCE.md section 7), into target/cuda (CPU builds untouched).
#
#   scripts/build-cuda.sh      # target/cuda/release/{daa,parity}, and target/cuda/carry/*.xz
#                              # (stripped, compressed: what a GPU machine is sent)
#
# Environment:
#   CUDA_VENV         where the toolkit wheels go (default: ~/.cache/daa-cuda/venv, outside the repo)
#   CUDA_TOOLKIT_PIN  the cuda-toolkit version (default 13.0.2, what the GPU machines' PyTorch pins)
#   CUDA_COMPUTE_CAP  the GPU's compute capability (default 90: H100/H200)
# The link-time libcuda stub lives in the venv and never enters an artifact: the binary
# needs the driver's libcuda.so.1 (and libcublas, libcurand, libcudart) where it runs;
# scripts/gpu-env.sh sets the library path on a GPU machine.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CUDA_VENV:-$HOME/.cache/daa-cuda/venv}"
pin="${CUDA_TOOLKIT_PIN:-13.0.2}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"

step() { printf '\n== %s\n' "$*"; }

step "toolkit wheels (cuda-toolkit $pin) in $venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "cuda-toolkit[cublas,cudart,curand,nvrtc,nvcc,crt,cccl,nvvm]==$pin"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cuda="$site/nvidia/cu13"
[ -x "$cuda/bin/nvcc" ] || { echo "error: no nvcc under $cuda" >&2; exit 2; }

step "unversioned library names for the linker"
for lib in cublas:13 cublasLt:13 curand:10 nvrtc:13 cudart:13; do
  name="${lib%%:*}" major="${lib##*:}"
  [ -e "$cuda/lib/lib$name.so.$major" ] || { echo "error: missing lib$name.so.$major" >&2; exit 2; }
  ln -sfn "lib$name.so.$major" "$cuda/lib/lib$name.so"
done

step "link-time libcuda stub (every driver entry point returns CUDA_ERROR_NO_DEVICE)"
cd "$repo"
cargo fetch -q
cudarc="$(cargo metadata --format-version 1 --features cuda --filter-platform x86_64-unknown-linux-gnu \
  | "$venv/bin/python" -c 'import json, os, sys; m = json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"] == "cudarc"))')"
mkdir -p "$cuda/lib/stubs"
{
  echo 'static const char no_device[] = "CUDA_ERROR_NO_DEVICE (link-time stub: no NVIDIA driver)";'
  echo 'int cuGetErrorString(int e, const char **s) { (void)e; if (s) *s = no_device; return 0; }'
  echo 'int cuGetErrorName(int e, const char **s) { (void)e; if (s) *s = "CUDA_ERROR_NO_DEVICE"; return 0; }'
  grep -ohE '^\s+fn cu[A-Za-z0-9_]+\(' "$cudarc/src/driver/sys/mod.rs" | sed -E 's/^\s+fn //; s/\($//' | sort -u \
    | grep -vxE 'cuGetErrorString|cuGetErrorName' | sed -E 's/.*/int &(void) { return 100; }/'
} > "$cuda/lib/stubs/libcuda_stub.c"
gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$cuda/lib/stubs/libcuda.so" "$cuda/lib/stubs/libcuda_stub.c"
ln -sfn libcuda.so "$cuda/lib/stubs/libcuda.so.1"

step "build (compute capability $CUDA_COMPUTE_CAP) into target/cuda"
export PATH="$cuda/bin:$PATH" CUDA_HOME="$cuda" CUDA_PATH="$cuda" CUDA_ROOT="$cuda"
export CUDARC_CUDA_VERSION=13000 CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
unset NVCC_CCBIN
nvcc --version | tail -2
start=$(date +%s)
CARGO_TARGET_DIR="$repo/target/cuda" cargo build --release --features cuda --bin daa
binary="$repo/target/cuda/release/daa"
# The PyTorch parity tests, for scripts/gpu-check.sh to run on the GPU (PARITY_DEVICE).
parity="$(CARGO_TARGET_DIR="$repo/target/cuda" cargo test --release --features cuda --test parity --no-run \
  --message-format json | "$venv/bin/python" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "parity" and m.get("executable"):
        print(m["executable"])')"
cp "$parity" "$repo/target/cuda/release/parity"
echo "built in $(( $(date +%s) - start )) s: $binary ($(du -h "$binary" | cut -f1)), $repo/target/cuda/release/parity"
readelf -d "$binary" | grep -E 'NEEDED' || true
step "stripped, xz-compressed copies to carry to a GPU machine: target/cuda/carry/"
mkdir -p "$repo/target/cuda/carry"
for built in daa parity; do
  strip -o "$repo/target/cuda/carry/$built" "$repo/target/cuda/release/$built"
  xz -f -T0 "$repo/target/cuda/carry/$built"
done
du -h "$repo"/target/cuda/carry/*.xz
echo "stub (for CPU-fallback runs here only): LD_LIBRARY_PATH=$cuda/lib/stubs:$cuda/lib"
