#!/usr/bin/env bash
# Prints, for every backbone x every method, a digest of the target model after a smoke
# training (SHA-256 of best.safetensors' tensor bytes, its header left out; "-" where the
# method keeps no checkpoint) and the
# test AUCs from result.json at full precision. Two builds that print the same lines train
# the same bits. Usage: scripts/param-digests.sh [DAA_BINARY] > digests.txt
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
daa=${1:-$repo/target/release/daa}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for backbone in singletask sharedbottom omoe mmoe ple aitm metaheac; do
  for method in single_domain source_only finetune daa daa_single daa_d2 dann; do
    out=$("$daa" -q run "$repo/configs/${backbone}_nl.toml" --profile smoke \
      --set output.runs_dir=runs --set "data.source.dir='$work/data'" \
      --set "data.target.dir='$work/data'" --set "adapt.method=$method")
    dir=$(printf '%s\n' "$out" | sed -n 's/^run directory: \(.*\) (.*/\1/p')
    digest=-
    [ -f "$dir/best.safetensors" ] && digest=$(python3 -c 'import hashlib,sys; b=open(sys.argv[1],"rb").read(); n=int.from_bytes(b[:8],"little"); print(hashlib.sha256(b[8+n:]).hexdigest()[:16])' "$dir/best.safetensors")
    aucs=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(" ".join(repr(t["auc"]) for t in r["test"]["tasks"]), r["best_epoch"])' "$dir/result.json")
    printf '%-13s %-14s %s %s\n' "$backbone" "$method" "$digest" "$aucs"
  done
done
