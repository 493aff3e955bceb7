using TorchSharp;

namespace M3Train.Runtime;

/// <summary>Turns a user's <c>--device</c> string (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>) into a device, with errors a user can act on.</summary>
public static class TorchDevices
{
    public const string CudaHint =
        "this build's libtorch has no CUDA. Build with -p:TorchBackend=external and put a CUDA PyTorch's " +
        "torch/lib on LD_LIBRARY_PATH (see README, 'Using a GPU'), or build with -p:TorchBackend=cuda.";

    public static torch.Device Resolve(string? spec)
    {
        string s = (spec ?? "cpu").Trim().ToLowerInvariant();
        if (s == "cpu") return torch.CPU;
        if (s == "cuda" || s.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new M3TrainException($"--device {spec}: {CudaHint}");
            int index = 0;
            if (s.Length > 4 && !int.TryParse(s[5..], out index))
                throw new M3TrainException($"--device {spec}: expected cuda:N with N a GPU index.");
            int count = torch.cuda.device_count();
            if (index < 0 || index >= count)
                throw new M3TrainException($"--device {spec}: there are {count} CUDA device(s) (cuda:0..cuda:{count - 1}).");
            return torch.device(DeviceType.CUDA, index);
        }
        throw new M3TrainException($"--device {spec}: expected cpu, cuda or cuda:N.");
    }
}
