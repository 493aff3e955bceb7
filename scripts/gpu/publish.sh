#!/usr/bin/env bash
# Packs m3train for a Linux GPU machine: a self-contained linux-x64 publish (no .NET needed there) built with
# -p:TorchBackend=external, so it carries TorchSharp's bindings but no libtorch: at run time libtorch comes from
# LD_LIBRARY_PATH, e.g. a CUDA PyTorch install's torch/lib (see docs/GPU.md and run-bench.sh).
#
#   scripts/gpu/publish.sh [OUTPUT_DIR]      # default out/gpu; writes OUTPUT_DIR/m3train-linux-x64.tar.xz
#
# The archive also holds the tokenizer and sample data that `m3train bench --mode tokenize|data` read by
# default, the quickstart config, and scripts/gpu/run-bench.sh, nccl-check.sh, dp-check.sh and scaling.sh. The build runs in a scratch copy of the sources, so
# the restore for the external backend does not touch this checkout's obj/ folders (a concurrent `dotnet build`
# here keeps working).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mkdir -p "${1:-$repo/out/gpu}" && cd "${1:-$repo/out/gpu}" && pwd)
name=m3train-linux-x64
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "copying sources to $scratch"
tar -C "$repo" --exclude=bin --exclude=obj --exclude=out --exclude=runs --exclude=.git \
    -cf - Directory.Build.props Directory.Build.targets Directory.Packages.props global.json build src \
  | tar -C "$scratch" -xf -

publish="$scratch/$name"
dotnet publish "$scratch/src/M3Train.Cli" -c Release -r linux-x64 --self-contained true \
  -p:TorchBackend=external -p:DebugType=none -o "$publish" -nologo -v quiet

# A libtorch next to LibTorchSharp would be loaded instead of the GPU machine's (its RUNPATH is $ORIGIN) and
# cannot be mixed with a CUDA one: refuse to pack any.
natives=$(find "$publish" \( -name 'libtorch*.so*' -o -name 'libc10*.so*' -o -name 'libgomp*.so*' -o -name 'libcudnn*' -o -name 'libcublas*' \) -printf '%f\n')
if [[ -n "$natives" ]]; then
  echo "error: the publish contains libtorch natives, which must come from the GPU machine:" >&2
  echo "$natives" >&2
  exit 1
fi
[[ -f "$publish/libLibTorchSharp.so" ]] || { echo "error: libLibTorchSharp.so is missing from the publish" >&2; exit 1; }

mkdir -p "$publish/data/models" "$publish/scripts/gpu"
cp -r "$repo/data/models/tiny-m3" "$publish/data/models/"
cp -r "$repo/data/train" "$publish/data/"
mkdir -p "$publish/configs"
cp "$repo/configs/quickstart.yaml" "$publish/configs/"
cp "$repo/scripts/gpu/run-bench.sh" "$repo/scripts/gpu/app-env.sh" "$repo/scripts/gpu/nccl-check.sh" "$repo/scripts/gpu/summarize.py" \
   "$repo/scripts/gpu/scaling.sh" "$repo/scripts/gpu/dp-check.sh" "$publish/scripts/gpu/"

rm -f "$out/$name.tar.xz"
tar -C "$scratch" -cJf "$out/$name.tar.xz" "$name"
echo "published $(du -sh "$publish" | cut -f1) ($(find "$publish" -type f | wc -l) files), no libtorch natives"
echo "archive   $out/$name.tar.xz ($(du -h "$out/$name.tar.xz" | cut -f1))"
