using System.Globalization;
using System.Runtime.InteropServices;

namespace M3Train.Runtime;

/// <summary>
/// Memory figures for benchmarks and memory tests. Host: resident set size and its peak from
/// /proc/self/status, with the peak resettable through /proc/self/clear_refs (Linux). CUDA: libtorch's
/// allocator statistics are not exposed by TorchSharp, so device memory is what the driver (NVML) reports in
/// use on the GPU, sampled on a background thread; it includes the CUDA context and the allocator's cache.
/// </summary>
public static class MemoryProbe
{
    public static long? HostRssBytes() => StatusKb("VmRSS");

    public static long? HostPeakRssBytes() => StatusKb("VmHWM");

    /// <summary>The resident set's private (anonymous) part: the heap, without mapped files such as the data's row index.</summary>
    public static long? HostAnonymousRssBytes() => StatusKb("RssAnon");

    /// <summary>The resident set's file-backed part: mapped files, shared through the page cache with other processes.</summary>
    public static long? HostFileRssBytes() => StatusKb("RssFile");

    /// <summary>Restarts the peak RSS count at the current RSS; false where the OS does not allow it.</summary>
    public static bool ResetHostPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Hands the C heap's free pages back to the OS (glibc <c>malloc_trim</c>), so that RSS and its peak count what is
    /// live: libtorch's CPU tensors come from malloc, and memory freed by a larger earlier step would otherwise stay resident.
    /// Does nothing where glibc is not there.
    /// </summary>
    public static void TrimHostHeap()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { malloc_trim(0); }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
    }

    [DllImport("libc.so.6")] static extern int malloc_trim(nuint pad);

    /// <summary>
    /// Bytes new allocations can still get without swapping: MemAvailable from /proc/meminfo, or what the process's
    /// cgroup still allows where that is less (a container's limit is not in /proc/meminfo). Null where unknown.
    /// </summary>
    public static long? HostAvailableBytes()
    {
        long? available = null;
        if (File.Exists("/proc/meminfo"))
            foreach (string line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    available = long.Parse(line["MemAvailable:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        long? allowance = CgroupAllowance("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")
            ?? CgroupAllowance("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes");
        return available is long a && allowance is long c ? Math.Min(a, c) : available ?? allowance;
    }

    /// <summary>Limit minus usage of a cgroup (v2 or v1 file names); null without a limit ("max", or v1's huge sentinel).</summary>
    static long? CgroupAllowance(string limitFile, string usageFile)
    {
        try
        {
            if (!File.Exists(limitFile) || !File.Exists(usageFile)) return null;
            if (!long.TryParse(File.ReadAllText(limitFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long limit)
                || limit >= long.MaxValue / 2) return null;
            long usage = long.Parse(File.ReadAllText(usageFile).Trim(), CultureInfo.InvariantCulture);
            return Math.Max(0, limit - usage);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }

    static long? StatusKb(string key)
    {
        if (!File.Exists("/proc/self/status")) return null;
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        return null;
    }

    /// <summary>Samples the device's used memory every few milliseconds until disposed; <see cref="PeakBytes"/> is the maximum seen.</summary>
    public sealed class DevicePeakSampler : IDisposable
    {
        readonly Thread? _thread;
        volatile bool _stop;
        long _peak;

        public bool Available { get; }
        public long PeakBytes => Interlocked.Read(ref _peak);

        public DevicePeakSampler(int gpuIndex, int intervalMs = 2)
        {
            if (!Nvml.TryDevice(gpuIndex, out IntPtr device)) return;
            Available = true;
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    if (Nvml.Used(device) is long used && used > Interlocked.Read(ref _peak)) Interlocked.Exchange(ref _peak, used);
                    Thread.Sleep(intervalMs);
                }
            }) { IsBackground = true, Name = "gpu-memory-sampler" };
            _thread.Start();
        }

        public void Dispose()
        {
            _stop = true;
            _thread?.Join();
        }
    }

    static class Nvml
    {
        const string Lib = "libnvidia-ml.so.1";
        static readonly Lazy<bool> Ready = new(() =>
        {
            if (!NativeLibrary.TryLoad(Lib, out _)) return false;
            try { return nvmlInit_v2() == 0; }
            catch (EntryPointNotFoundException) { return false; }
        });

        public static bool TryDevice(int index, out IntPtr device)
        {
            device = IntPtr.Zero;
            return Ready.Value && nvmlDeviceGetHandleByIndex_v2((uint)index, out device) == 0;
        }

        public static long? Used(IntPtr device) =>
            nvmlDeviceGetMemoryInfo(device, out var info) == 0 ? (long)info.Used : null;

        [StructLayout(LayoutKind.Sequential)]
        public struct MemoryInfo { public ulong Total, Free, Used; }

        [DllImport(Lib)] static extern int nvmlInit_v2();
        [DllImport(Lib)] static extern int nvmlDeviceGetHandleByIndex_v2(uint index, out IntPtr device);
        [DllImport(Lib)] static extern int nvmlDeviceGetMemoryInfo(IntPtr device, out MemoryInfo info);
    }
}
