#!/usr/bin/env bash
# Data-parallel scaling of the training step on 1, 2, 4 and 8 GPUs of this machine (those it has), from the archive
# scripts/gpu/publish.sh made: for each N, `m3train launch --nproc-per-node N -- bench --mode step --device cuda`
# (one rank per GPU, NCCL, every rank the same per-rank batch), then the tokens/s of all ranks together and the
# scaling efficiency against one GPU (N GPUs' tokens/s over N times one GPU's; 1.0 is perfect). Needs: the NVIDIA
# driver, python3 with a CUDA torch (its libtorch, and NCCL beside it). No .NET.
#
#   scripts/gpu/scaling.sh [ARCHIVE_OR_FOLDER] [RESULTS_DIR]
#     ARCHIVE_OR_FOLDER  default out/gpu/m3train-linux-x64.tar.xz (or an unpacked m3train-linux-x64 folder)
#     RESULTS_DIR        default $OUT/scaling when $OUT is set, else out/gpu/scaling
#   PRESET=base QUERIES=8 GROUP=8 QUERY_LENGTH=64 PASSAGE_LENGTH=512   the per-rank step (bench's options)
#   STEPS=10 WARMUP=3 OVERLAP=on COUNTS="1 2 4 8" RUN_TIMEOUT=900
#
# Writes each N's bench report (rank 0's), the ranks' logs and summary.md.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_path=${1:-out/gpu/m3train-linux-x64.tar.xz}
results=${2:-${OUT:+$OUT/scaling}}
results=${results:-out/gpu/scaling}
PRESET=${PRESET:-base} QUERIES=${QUERIES:-8} GROUP=${GROUP:-8} QUERY_LENGTH=${QUERY_LENGTH:-64} PASSAGE_LENGTH=${PASSAGE_LENGTH:-512}
STEPS=${STEPS:-10} WARMUP=${WARMUP:-3} OVERLAP=${OVERLAP:-on} COUNTS=${COUNTS:-1 2 4 8} RUN_TIMEOUT=${RUN_TIMEOUT:-900}
mkdir -p "$results"
results=$(cd "$results" && pwd)

source "$here/app-env.sh"
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
cd "$app"
{ ./m3train info; echo "gpus $gpus"; nvidia-smi topo -m 2>/dev/null; } | tee "$results/info.txt"

status=0
for n in $COUNTS; do
  if (( n > gpus )); then echo "== $n GPUs: skipped, this machine has $gpus" >&2; continue; fi
  echo "== $n GPU(s)" >&2
  timeout "$RUN_TIMEOUT" ./m3train launch --nproc-per-node "$n" --log-dir "$results/launch-$n" -- \
    bench --mode step --device cuda --preset "$PRESET" --queries "$QUERIES" --group "$GROUP" \
    --query-length "$QUERY_LENGTH" --passage-length "$PASSAGE_LENGTH" --steps "$STEPS" --warmup "$WARMUP" \
    --overlap "$OVERLAP" --output "$results/ranks-$n.json" > "$results/launch-$n.out" 2> "$results/launch-$n.log" \
    || { echo "$n GPUs: FAILED, see $results/launch-$n.log" >&2; status=1; }
done

python3 - "$results" <<'PY' | tee "$results/summary.md"
import json, os, sys
results = sys.argv[1]
runs = {}
for name in os.listdir(results):
    if name.startswith("ranks-") and name.endswith(".json"):
        runs[int(name[6:-5])] = json.load(open(os.path.join(results, name)))["result"]
if not runs:
    sys.exit("no run finished")
print("| GPUs | step s | tokens/s (all ranks) | efficiency | gradient all-reduce s/step (blocked) | buckets started in backward |")
print("| ---: | ---: | ---: | ---: | ---: | ---: |")
one = runs.get(1)
for n in sorted(runs):
    r = runs[n]
    world = r["world_tokens_per_second"]
    efficiency = f"{world / (n * one['world_tokens_per_second']):.3f}" if one else "?"
    dp = r.get("data_parallel") or {}
    reduce = f"{dp['gradient_reduce_seconds_per_step']:.4f}" if dp else "-"
    buckets = f"{dp['buckets_started_during_backward']}/{dp['buckets']}" if dp else "-"
    print(f"| {n} | {r['step_seconds']['mean']:.4f} | {world:,.0f} | {efficiency} | {reduce} | {buckets} |")
PY
exit $status
