#!/usr/bin/env bash
# On a GPU machine: runs a command with the CUDA 13 libraries of the PyTorch venv on the
# library path (libcublas.so.13, libcurand.so.10, libcudart.so.13; libcuda.so.1 comes from
# the driver). Usage: scripts/gpu-env.sh target/cuda/release/daa run ...
set -euo pipefail
venv="${TORCH_VENV:-/opt/torch/.venv}"
site=""
for d in "$venv"/lib/python3*/site-packages; do [ -d "$d/nvidia" ] && site="$d" && break; done
[ -n "$site" ] || { echo "error: no $venv/lib/python3*/site-packages/nvidia" >&2; exit 2; }
libs=""
for d in "$site"/nvidia/cu13/lib "$site"/nvidia/*/lib; do
  [ -d "$d" ] && case ":$libs:" in *":$d:"*) ;; *) libs="${libs:+$libs:}$d" ;; esac
done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing="$(ldd "$1" 2>/dev/null | grep 'not found' || true)"
[ -z "$missing" ] || { echo "error: unresolved libraries for $1:" >&2; echo "$missing" >&2; exit 3; }
exec "$@"
