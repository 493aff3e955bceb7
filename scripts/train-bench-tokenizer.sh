#!/usr/bin/env bash
# Trains a larger SentencePiece unigram model on the text of data/ (about 1.7M characters), to measure the
# tokenizer on more than the tiny model's 1500 pieces. Asking for 32,000 pieces gives about 14,300: the text
# supports no more. Needs the SentencePiece CLI (Debian/Ubuntu: apt-get install sentencepiece) and python3.
#
#   scripts/train-bench-tokenizer.sh [OUTPUT_DIR]     # default out/tokenizer-bench
#   dotnet src/M3Train.Cli/bin/Release/net10.0/m3train.dll bench --mode tokenize --tokenizer out/tokenizer-bench
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/out/tokenizer-bench}
command -v spm_train >/dev/null || { echo "error: spm_train not found; install the SentencePiece CLI (apt-get install sentencepiece)" >&2; exit 1; }
mkdir -p "$out"

# Every string of every JSONL file under data/, one line each.
python3 - "$repo/data" "$out/corpus.txt" <<'PY'
import json, pathlib, sys
root, target = pathlib.Path(sys.argv[1]), sys.argv[2]
def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node: yield from strings(item)
    elif isinstance(node, dict):
        for item in node.values(): yield from strings(item)
chars = 0
with open(target, "w", encoding="utf-8") as f:
    for path in sorted(root.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip(): continue
            for text in strings(json.loads(line)):
                text = " ".join(text.split())
                if text:
                    f.write(text + "\n")
                    chars += len(text)
print(f"corpus: {chars:,} characters from {root}")
PY

spm_train --input="$out/corpus.txt" --model_prefix="$out/unigram" --vocab_size=32000 --hard_vocab_limit=false \
  --model_type=unigram --character_coverage=0.9995 --minloglevel=1
mv "$out/unigram.model" "$out/sentencepiece.bpe.model"
echo "$(wc -l < "$out/unigram.vocab") pieces: $out/sentencepiece.bpe.model"
