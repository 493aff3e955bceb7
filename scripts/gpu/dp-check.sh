#!/usr/bin/env bash
# Checks data-parallel training on a machine with NVIDIA GPUs, from the archive scripts/gpu/publish.sh made:
#   1. the shipped quickstart on one GPU, once plainly and once through `m3train launch --nproc-per-node 1`: the
#      two runs must be the same run, bit for bit (every logged loss and gradient norm, the final weights);
#   2. with several GPUs, the same run with `--devices cuda` (one rank per GPU, NCCL, cross-device negatives), which
#      must finish with weights checked identical on every rank before each checkpoint.
# Needs: the NVIDIA driver, python3 with a CUDA torch (its libtorch, and NCCL beside it). No .NET.
#
#   scripts/gpu/dp-check.sh [ARCHIVE_OR_FOLDER] [RESULTS_DIR]
#     RESULTS_DIR  default $OUT/dp when $OUT is set, else out/gpu/dp
#   STEPS=40   training steps of each run
#
# Writes the runs' folders and logs and summary.txt; exits 1 unless every check holds.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_path=${1:-out/gpu/m3train-linux-x64.tar.xz}
results=${2:-${OUT:+$OUT/dp}}
results=${results:-out/gpu/dp}
STEPS=${STEPS:-40}
mkdir -p "$results"
results=$(cd "$results" && pwd)

source "$here/app-env.sh"
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
cd "$app"
: > "$results/summary.txt"
status=0

# train NAME ARGS...: the quickstart on CUDA in fp32 for STEPS steps into $results/NAME.
train() {
  local name=$1; shift
  echo "== $name: $*" >&2
  timeout 600 "$@" --config configs/quickstart.yaml --set "output_dir=$results/$name" --set "train.max_steps=$STEPS" \
    --set train.log_every=1 --set train.precision=fp32 > "$results/$name.out" 2> "$results/$name.log" \
    || { echo "$name: FAILED: $(grep -m1 -E '(^|\] )error' "$results/$name.log")" | tee -a "$results/summary.txt"; status=1; }
}

train plain ./m3train finetune --device cuda
train launch1 ./m3train launch --nproc-per-node 1 --log-dir "$results/launch1-logs" -- finetune --device cuda
python3 - "$results" <<'PY' | tee -a "$results/summary.txt" || status=1
import hashlib, json, os, sys
results = sys.argv[1]
def metrics(name):
    return [(l["loss"], l["grad_norm"]) for l in map(json.loads, open(os.path.join(results, name, "metrics.jsonl")))]
def digest(name):
    return hashlib.sha256(open(os.path.join(results, name, "final", "model.safetensors"), "rb").read()).hexdigest()
a, b = metrics("plain"), metrics("launch1")
same_curve, same_weights = a == b, digest("plain") == digest("launch1")
print(f"launch with one rank vs plain run: {len(a)} logged steps {'identical' if same_curve else 'DIFFER'}, "
      f"final weights {'identical' if same_weights else 'DIFFER'}")
if not same_curve:
    worst = max((abs(x[0] - y[0]), abs(x[1] - y[1])) for x, y in zip(a, b))
    print(f"  largest difference (loss, grad_norm): {worst}")
sys.exit(0 if same_curve and same_weights else 1)
PY
if [[ $gpus -gt 1 ]]; then
  train "gpus$gpus" ./m3train finetune --devices cuda
  grep -h -m1 "Global batch" "$results/gpus$gpus.log" | tee -a "$results/summary.txt"
  [[ -s "$results/gpus$gpus/final/model.safetensors" ]] && echo "$gpus GPUs: finished, final model written" | tee -a "$results/summary.txt"
fi
exit $status
