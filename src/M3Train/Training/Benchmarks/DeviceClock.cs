using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// Wall time of device work: CUDA kernels run asynchronously, so a reading is exact only after
/// <see cref="Synchronize"/>; on the CPU every operation has finished when it returns.
/// </summary>
public sealed class DeviceClock(Device device)
{
    readonly Stopwatch _watch = Stopwatch.StartNew();

    public Device Device { get; } = device;

    /// <summary>Seconds since the clock started (host time: does not wait for queued device work).</summary>
    public double Now => _watch.Elapsed.TotalSeconds;

    /// <summary>
    /// CPU seconds this process has used, all threads. On a shared machine it is steadier than wall time for
    /// comparing CPU runs (other processes' load barely changes it); with several threads it includes their spinning.
    /// </summary>
    public static double ProcessCpuSeconds()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }

    /// <summary>Waits until the device has run everything queued.</summary>
    public void Synchronize()
    {
        if (Device.type == DeviceType.CUDA) cuda.synchronize(Device);
    }

    /// <summary>Seconds since the clock started once the device has caught up.</summary>
    public double SynchronizedNow()
    {
        Synchronize();
        return Now;
    }
}
