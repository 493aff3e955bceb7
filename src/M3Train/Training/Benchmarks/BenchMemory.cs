using System.Text.Json.Nodes;
using M3Train.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// Peak memory over a timed pass. CUDA: the GPU's used memory as the driver reports it (NVML, sampled every
/// 2 ms; it includes the CUDA context and the allocator's cached blocks, so it is at least what PyTorch's
/// <c>max_memory_reserved</c> would say). CPU: the process's peak resident set, the host being the device.
/// </summary>
public sealed class BenchMemory : IDisposable
{
    readonly Device _device;
    readonly MemoryProbe.DevicePeakSampler? _sampler;
    readonly bool _hostPeakReset;

    /// <summary>Starts measuring: resets the host peak and, on CUDA, starts the sampler.</summary>
    public BenchMemory(Device device)
    {
        _device = device;
        _hostPeakReset = MemoryProbe.ResetHostPeak();
        if (device.type == DeviceType.CUDA) _sampler = new MemoryProbe.DevicePeakSampler(Math.Max(0, (int)device.index));
    }

    /// <summary>Stops the sampler and describes what was seen.</summary>
    public JsonObject Report()
    {
        _sampler?.Dispose();
        long? hostPeak = MemoryProbe.HostPeakRssBytes();
        bool cuda = _device.type == DeviceType.CUDA;
        long? devicePeak = cuda ? (_sampler!.Available ? _sampler.PeakBytes : null) : hostPeak;
        return new JsonObject
        {
            ["device_peak_bytes"] = devicePeak,
            ["device_peak_gib"] = devicePeak is long b ? Math.Round(b / (double)(1L << 30), 3) : null,
            ["device_peak_source"] = cuda
                ? (_sampler!.Available ? "nvml: used memory of the whole GPU, sampled every 2 ms" : "unavailable: libnvidia-ml.so.1 not found")
                : "host peak resident set (the CPU is the device)",
            ["host_rss_bytes"] = MemoryProbe.HostRssBytes(),
            ["host_peak_rss_bytes"] = hostPeak,
            ["host_peak_is_for_this_pass"] = _hostPeakReset,
        };
    }

    public void Dispose() => _sampler?.Dispose();
}
