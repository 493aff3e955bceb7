#!/usr/bin/env bash
# Checks the NCCL backend on a machine with NVIDIA GPUs: all_reduce (sum, average, bfloat16), all_gather and
# broadcast on CUDA tensors against known results, at world size 1 in one process, then through
# `m3train launch` with one rank, then with one rank per GPU when there are several. Needs: the NVIDIA driver,
# python3 with a CUDA torch (its libtorch, and NCCL beside it). No .NET: it runs the archive of
# scripts/gpu/publish.sh.
#
#   scripts/gpu/nccl-check.sh [ARCHIVE_OR_FOLDER] [RESULTS_DIR]
#     ARCHIVE_OR_FOLDER  default out/gpu/m3train-linux-x64.tar.xz (or an unpacked m3train-linux-x64 folder)
#     RESULTS_DIR        default $OUT/nccl when $OUT is set, else out/gpu/nccl
#   SIZES=4K,1M,64M      bytes per rank's tensor
#
# Writes one JSON report per run (m3train dist-check's), the runs' logs and summary.txt; exits 1 unless every
# check is correct and every rank ended with identical bits.
set -uo pipefail

source_path=${1:-out/gpu/m3train-linux-x64.tar.xz}
results=${2:-${OUT:+$OUT/nccl}}
results=${results:-out/gpu/nccl}
SIZES=${SIZES:-4K,1M,64M}
mkdir -p "$results"
results=$(cd "$results" && pwd)

source "$(dirname "${BASH_SOURCE[0]}")/app-env.sh"
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)

cd "$app"
{ ./m3train info; echo "gpus $gpus"; python3 -c 'import torch;print("pytorch", torch.__version__, "cuda", torch.version.cuda, "nccl", torch.cuda.nccl.version())'; } \
  | tee "$results/info.txt"

status=0
# run NAME ARGS...: one m3train command whose dist-check report goes to NAME.json; its verdict is appended to summary.txt.
run() {
  local name=$1; shift
  echo "== $name: $*" >&2
  timeout 300 ./m3train "$@" --output "$results/$name.json" > "$results/$name.out" 2> "$results/$name.log"
  local rc=$?
  if [[ $rc -ne 0 || ! -s "$results/$name.json" ]]; then
    echo "$name: FAILED (exit $rc): $(grep -m1 -E '^(\[rank [0-9]+\] )?error' "$results/$name.log")" | tee -a "$results/summary.txt"
    status=1
    return
  fi
  python3 - "$results/$name.json" "$name" <<'PY' | tee -a "$results/summary.txt" || status=1
import json, sys
report, name = json.load(open(sys.argv[1])), sys.argv[2]
print(f"{name}: {'ok' if report['ok'] else 'WRONG'} ({report['world_size']} rank(s), {report['backend']}, {report['device']})")
for r in report["results"]:
    verdict = "ok" if r["correct"] and r["identical_across_ranks"] else "WRONG"
    print(f"  {r['collective']:<10} {r['op']:<14} {r['dtype']:<8} {r['bytes']:>10} B  {verdict:<5} {r['time_us']['mean']:>10.1f} us  bus {r['busbw_gbps']:>8.2f} GB/s")
sys.exit(0 if report["ok"] else 1)
PY
}

: > "$results/summary.txt"
run nccl-world1 dist-check --device cuda --sizes "$SIZES"
run nccl-launch1 launch --nproc-per-node 1 --log-dir "$results/launch1" -- dist-check --device cuda --sizes "$SIZES"
if [[ $gpus -gt 1 ]]; then
  run "nccl-launch$gpus" launch --nproc-per-node "$gpus" --log-dir "$results/launch$gpus" -- dist-check --device cuda --sizes "$SIZES"
fi
exit $status
