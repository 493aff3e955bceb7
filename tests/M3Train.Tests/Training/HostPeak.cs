using M3Train.Runtime;
using Xunit;

namespace M3Train.Tests.Training;

/// <summary>Peak host memory of a piece of work, for tests in <see cref="HostMemoryCollection"/>.</summary>
internal static class HostPeak
{
    /// <summary>Skips the calling test, saying why, where the peak resident set cannot be reset.</summary>
    public static void RequireMeasurable()
    {
        if (!OperatingSystem.IsLinux() || !MemoryProbe.ResetHostPeak() || MemoryProbe.HostPeakRssBytes() is null)
            Assert.Skip("peak RSS cannot be reset here (needs Linux /proc/self/clear_refs): host memory is not measurable");
    }

    /// <summary>
    /// Growth of the peak resident set over the resident set while <paramref name="step"/> runs, in MiB, after
    /// handing freed heap back to the OS: memory that earlier work freed but glibc kept would otherwise absorb it.
    /// </summary>
    public static double MiB(Action step)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        MemoryProbe.TrimHostHeap();
        MemoryProbe.ResetHostPeak();
        long before = MemoryProbe.HostRssBytes()!.Value;
        step();
        return (MemoryProbe.HostPeakRssBytes()!.Value - before) / 1048576.0;
    }
}
