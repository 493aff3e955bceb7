#!/usr/bin/env bash
# Makes data/models/tiny-m3-pretrained, the model configs/quickstart.yaml fine-tunes, from the shipped tiny-m3 and
# the shipped text (data/pretrain) with the project's own stage-1 pipeline, on CPU:
#
#   scripts/make-quickstart-model.sh        # about 2.5 CPU-minutes (one libtorch thread); work files in runs/quickstart-model
#
# 1. extend-positions: tiny-m3's position table from 130 to 258 rows (256 tokens), as BGE-M3 grew XLM-R's.
# 2. RetroMAE (configs/quickstart-model-retromae.yaml): 500 steps; loss_mlm and loss_decoder 7.3 → about 4.8-4.9 each.
# 3. Contrastive pretraining (configs/quickstart-model-contrastive.yaml): 200 steps; loss 2.77 → about 1.2.
# 4. The result replaces data/models/tiny-m3-pretrained, with a README.md saying how it was made.
#
# Why tiny-m3 itself cannot be the quickstart's model: its weights are HF's fresh initialization (std 0.02), so each
# layer adds to the residual stream only a few hundredths of what the embedding LayerNorm puts there, and attention
# is nearly uniform. The CLS state is therefore the LayerNorm of <s> at the first position plus a text-dependent
# part a few thousandths of its size: every text's dense vector points the same way (cosine 0.99999), and the
# InfoNCE gradient that would move them apart passes through the product of two such small matrices (value and
# output projections), so fine-tuning's dense scores stay at 1.0 and loss_dense at ln k. The sparse and
# multi-vector heads read each token's own state, which differs from token to token, so they learn from the start.
# Steps 2 and 3 give the encoder weights that make CLS depend on the text; tiny-m3's sparse and ColBERT heads are
# kept as they are. Neither step is enough alone. After RetroMAE only, dense scores are still about 0.90 between
# unrelated texts: the quickstart starts at dense_pos 0.986 = dense_neg 0.985, and its dense nDCG@10 on
# data/beir-sample ends at 0.159 (0.437 after both steps). Contrastive pretraining straight from tiny-m3 gets its
# loss to 1.6 only, not 1.1, and a dense nDCG@10 of 0.105, against 0.219 with RetroMAE first.
#
# The run is deterministic (fixed seeds, one libtorch thread): a rerun writes the same files, byte for byte.
# Expected, as measured (the summary lines of steps 2 and 3 say "mean loss ... over the first tenth → ... over the
# last tenth"): RetroMAE 13.83 → 9.70 (loss_mlm + loss_decoder), contrastive 2.63 → 1.14; then
#   m3train inspect --model data/models/tiny-m3-pretrained --input data/train/nq.jsonl
# gives a mean dense score of 0.95 for positives and 0.54 for negatives (tiny-m3: 1.0000 for both), and
# docs/EVAL.md's table gives its evaluation on data/beir-sample before and after the quickstart.
# A change to the pretraining code changes this model: rerun the script, commit data/models/tiny-m3-pretrained, and
# update the figures here, in the two configs, in configs/quickstart.yaml, README.md and docs/EVAL.md.
set -euo pipefail
cd "$(dirname "$0")/.."

work=runs/quickstart-model
out=data/models/tiny-m3-pretrained
# One intra-op thread: float sums in the same order on every run, and no oversubscribed cores.
export OMP_NUM_THREADS=1

dotnet build src/M3Train.Cli -c Release --nologo -v quiet
m3train() { dotnet run --project src/M3Train.Cli -c Release --no-build -- "$@"; }

rm -rf "$work"
m3train extend-positions --model data/models/tiny-m3 --max-positions 258 --output "$work/tiny-m3-258"
m3train pretrain --config configs/quickstart-model-retromae.yaml
m3train pretrain --config configs/quickstart-model-contrastive.yaml

rm -rf "$out.tmp"
cp -r "$work/contrastive/final" "$out.tmp"
# Stage 1 trains neither the sparse nor the multi-vector head: their tensors are tiny-m3's, and tiny-m3's own files
# hold them byte for byte without the zip timestamps of a fresh save, so a rerun leaves every file unchanged.
cp data/models/tiny-m3/sparse_linear.pt data/models/tiny-m3/colbert_linear.pt "$out.tmp/"
cat > "$out.tmp/README.md" <<'CARD'
---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
tags:
- sentence-transformers
- feature-extraction
- bge-m3
- m3train
---

# tiny-m3-pretrained

`data/models/tiny-m3` (XLM-RoBERTa, 2 layers, hidden size 32, its 1502-piece vocabulary, freshly initialized weights)
after M3Train's stage-1 pipeline on the 400 texts and 320 pairs of `data/pretrain`, made by
`scripts/make-quickstart-model.sh`:

| step | |
| --- | --- |
| `extend-positions` | 130 → 258 positions (256 tokens) |
| RetroMAE | `configs/quickstart-model-retromae.yaml`: 500 steps, lr 1e-3 |
| contrastive | `configs/quickstart-model-contrastive.yaml`: 200 steps, lr 1e-3, τ 0.05 |

Stage 1 trains the encoder (and its masked-LM head, kept as `lm_head.*`); the sparse and multi-vector heads are
tiny-m3's. The quickstart (`configs/quickstart.yaml`) fine-tunes it; its dense vectors separate texts, which
tiny-m3's do not. A model for demonstrations and tests: it knows little beyond its training texts.
CARD
rm -rf "$out"
mv "$out.tmp" "$out"
echo "Wrote $out"
