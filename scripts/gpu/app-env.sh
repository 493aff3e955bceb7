# Sourced by the GPU scripts (run-bench.sh, nccl-check.sh): sets $app to the m3train of $source_path (the archive
# scripts/gpu/publish.sh makes, or an unpacked m3train-linux-x64 folder) and points the loader at the machine's
# CUDA PyTorch libtorch, which the external-backend publish leaves out.
if [[ -d "$source_path" ]]; then
  app=$(cd "$source_path" && pwd)
else
  unpacked=$(mktemp -d)
  tar -xJf "$source_path" -C "$unpacked" || { echo "error: cannot unpack $source_path (run scripts/gpu/publish.sh first)" >&2; exit 1; }
  app="$unpacked/m3train-linux-x64"
fi

torch_lib=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib \
  || { echo "error: python3 cannot import torch; m3train needs a CUDA PyTorch's libtorch" >&2; exit 1; }
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Self-contained .NET needs ICU unless globalization is invariant; m3train does not depend on cultures.
ldconfig -p 2>/dev/null | grep -q libicuuc || export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
