using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using M3Train.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>What a benchmark ran on, so results from different machines can be put side by side.</summary>
public static class BenchMachine
{
    public static JsonObject Describe(Device device)
    {
        var gpu = device.type == DeviceType.CUDA
            ? CudaInfo.Devices().FirstOrDefault(g => g.Index == Math.Max(0, (int)device.index))
            : null;
        return new JsonObject
        {
            ["device"] = device.type == DeviceType.CUDA ? $"cuda:{Math.Max(0, (int)device.index)}" : "cpu",
            ["device_name"] = gpu?.Name ?? CpuModel(),
            ["device_memory_bytes"] = gpu?.TotalBytes,
            ["cpu"] = CpuModel(),
            ["cores"] = Environment.ProcessorCount,
            ["intra_op_threads"] = get_num_threads(),
            ["inter_op_threads"] = get_num_interop_threads(),
            ["libtorch"] = __version__,
            ["torchsharp"] = InformationalVersion(typeof(torch).Assembly),
            ["torch_backend"] = BuildInfo.TorchBackend,
            ["m3train"] = InformationalVersion(typeof(BenchMachine).Assembly),
            ["os"] = RuntimeInformation.OSDescription,
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
        };
    }

    static string InformationalVersion(Assembly assembly) =>
        (assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
         ?? assembly.GetName().Version?.ToString() ?? "?").Split('+')[0];

    static string CpuModel()
    {
        const string path = "/proc/cpuinfo";
        if (File.Exists(path))
            foreach (string line in File.ReadLines(path))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int colon and > 0)
                    return line[(colon + 1)..].Trim();
        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}
