#!/usr/bin/env bash
# Runs issue 10's benchmarks on a machine with an NVIDIA GPU and a CUDA PyTorch install, from the archive that
# scripts/gpu/publish.sh made. Needs: python3 with torch (for its libtorch), the NVIDIA driver. No .NET.
#
#   scripts/gpu/run-bench.sh [ARCHIVE_OR_FOLDER] [RESULTS_DIR]
#     ARCHIVE_OR_FOLDER  default out/gpu/m3train-linux-x64.tar.xz (or an unpacked m3train-linux-x64 folder)
#     RESULTS_DIR        default $OUT/bench when $OUT is set, else out/gpu/results
#
# Writes info.txt, one JSON report per run (plus its log), and summary.md (the table with ratios to the
# FlagEmbedding anchors). Settings through the environment:
#   STEPS=5 WARMUP=2          timed and warmup steps of the table runs
#   SEARCH_STEPS=1            timed steps of each run of the batch-size search and the GradCache run (warmup 1)
#   SEARCH=1                  search the largest B (G=8) that fits at 8192 passage tokens; 0 skips it
#   SEARCH_MAX=64             largest B tried
#   FIT_LIMIT_GIB=79          a run fits when its peak GPU memory is at most this (an 80 GB GPU has 79.6 GiB)
#   NO_CHECKPOINTING=1        also run the 512- and 2048-token rows without activation checkpointing
#   GRADCACHE=1               after the search, run twice the largest B with GradCache sub-batches of 8
#   RUN_TIMEOUT=420           seconds before one run is stopped
#   PYTORCH_CUDA_ALLOC_CONF   default expandable_segments:True (libtorch's allocator then fragments less near the limit)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_path=${1:-out/gpu/m3train-linux-x64.tar.xz}
results=${2:-${OUT:+$OUT/bench}}
results=${results:-out/gpu/results}
STEPS=${STEPS:-5} WARMUP=${WARMUP:-2} SEARCH_STEPS=${SEARCH_STEPS:-1} SEARCH=${SEARCH:-1} SEARCH_MAX=${SEARCH_MAX:-64}
FIT_LIMIT_GIB=${FIT_LIMIT_GIB:-79} NO_CHECKPOINTING=${NO_CHECKPOINTING:-1} GRADCACHE=${GRADCACHE:-1} RUN_TIMEOUT=${RUN_TIMEOUT:-420}
mkdir -p "$results"
results=$(cd "$results" && pwd)

source "$here/app-env.sh"
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}

cd "$app"   # the default --tokenizer/--data paths are relative to the published folder
{ ./m3train info; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null; \
  python3 -c 'import torch;print("pytorch", torch.__version__, "cuda", torch.version.cuda)'; } | tee "$results/info.txt"

# bench NAME ARGS...: one run; prints its peak GiB (empty when it failed or had no memory figure).
bench() {
  local name=$1; shift
  echo "== $name: $*" >&2
  timeout "$RUN_TIMEOUT" ./m3train bench --device cuda "$@" \
      --output "$results/$name.json" > /dev/null 2> "$results/$name.log"
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "   failed (exit $rc): $(grep -m1 -iE 'error|exception|out of memory' "$results/$name.log")" >&2
    rm -f "$results/$name.json"
    return 1
  fi
  tail -n 1 "$results/$name.log" >&2
  python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["result"]["memory"]["device_peak_gib"] or "")' "$results/$name.json"
}

fits() {   # fits NAME ARGS...: the run succeeded and peaked at most FIT_LIMIT_GIB
  local peak
  peak=$(bench "$@") || return 1
  [[ -n "$peak" ]] && python3 -c 'import sys;sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$peak" "$FIT_LIMIT_GIB"
}

# Seconds-long runs on the tiny model first: the CUDA step (whole and GradCache, bf16) and encoding must work
# before minutes go into the large ones.
smoke=(--preset tiny --precision bf16 --queries 4 --group 4 --query-length 32 --passage-length 128 --steps 2 --warmup 1)
bench smoke-tiny-step "${smoke[@]}" >/dev/null \
  && bench smoke-tiny-step-sub2 "${smoke[@]}" --sub-batch 2 >/dev/null \
  && bench smoke-tiny-encode "${smoke[@]}" --mode encode >/dev/null \
  || { echo "error: the tiny CUDA runs failed (logs in $results); not starting the large ones" >&2; exit 1; }

m3=(--preset bge-m3 --precision bf16)

# Issue 10's table, as FlagEmbedding ran it (activation checkpointing).
bench row1-8x8-512 "${m3[@]}" --queries 8 --group 8 --query-length 64 --passage-length 512 --steps "$STEPS" --warmup "$WARMUP" >/dev/null
bench row2-2x8-2048 "${m3[@]}" --queries 2 --group 8 --query-length 64 --passage-length 2048 --steps "$STEPS" --warmup "$WARMUP" >/dev/null
bench row3-1x8-8192 "${m3[@]}" --queries 1 --group 8 --query-length 64 --passage-length 8192 --steps "$STEPS" --warmup "$WARMUP" >/dev/null
bench row4-1x2-8192 "${m3[@]}" --queries 1 --group 2 --query-length 64 --passage-length 8192 --steps "$STEPS" --warmup "$WARMUP" >/dev/null
if [[ "$NO_CHECKPOINTING" == 1 ]]; then
  bench row1-8x8-512-nockpt "${m3[@]}" --queries 8 --group 8 --query-length 64 --passage-length 512 --checkpointing off --steps "$STEPS" --warmup "$WARMUP" >/dev/null
  bench row2-2x8-2048-nockpt "${m3[@]}" --queries 2 --group 8 --query-length 64 --passage-length 2048 --checkpointing off --steps "$STEPS" --warmup "$WARMUP" >/dev/null
fi

# Largest B x 8 at 8192 passage tokens: double B while it fits, then bisect.
if [[ "$SEARCH" == 1 ]]; then
  search() { fits "search-${1}x8-8192" "${m3[@]}" --queries "$1" --group 8 --query-length 64 --passage-length 8192 --steps "$SEARCH_STEPS" --warmup 1 >/dev/null; }
  good=0 bad=0 b=2
  while (( b <= SEARCH_MAX )); do
    if search "$b"; then good=$b; b=$((b * 2)); else bad=$b; break; fi
  done
  if (( bad == 0 )); then bad=$((SEARCH_MAX + 1)); fi
  if (( good == 0 )); then good=1; fi   # row 3 is B = 1
  while (( bad - good > 1 )); do
    mid=$(((good + bad) / 2))
    if search "$mid"; then good=$mid; else bad=$mid; fi
  done
  echo "largest B x 8 at 8192 passage tokens within ${FIT_LIMIT_GIB} GiB: B = $good" | tee "$results/largest-batch.txt"
  if [[ "$GRADCACHE" == 1 ]]; then
    bench "gradcache-$((good * 2))x8-8192-sub8" "${m3[@]}" --queries $((good * 2)) --group 8 --query-length 64 --passage-length 8192 \
      --sub-batch 8 --steps "$SEARCH_STEPS" --warmup 1 >/dev/null
  fi
fi

python3 "$here/summarize.py" "$results" | tee "$results/summary.md"
