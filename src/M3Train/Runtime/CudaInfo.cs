using System.Runtime.InteropServices;
using System.Text;

namespace M3Train.Runtime;

/// <summary>
/// CUDA device facts TorchSharp does not expose (name, total and free memory), read from the driver API
/// (libcuda), which every machine with an NVIDIA driver has. Returns nothing where there is no driver.
/// </summary>
public static class CudaInfo
{
    public sealed record Gpu(int Index, string Name, long TotalBytes);

    static readonly Lazy<bool> Initialized = new(() =>
    {
        if (!NativeLibrary.TryLoad(OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1", out _)) return false;
        try { return Driver.cuInit(0) == 0; }
        catch (DllNotFoundException) { return false; }
        catch (EntryPointNotFoundException) { return false; }
    });

    public static IReadOnlyList<Gpu> Devices()
    {
        var gpus = new List<Gpu>();
        if (!Initialized.Value || Driver.cuDeviceGetCount(out int count) != 0) return gpus;
        for (int i = 0; i < count; i++)
        {
            if (Driver.cuDeviceGet(out int dev, i) != 0) continue;
            var name = new byte[256];
            Driver.cuDeviceGetName(name, name.Length, dev);
            Driver.cuDeviceTotalMem_v2(out nuint total, dev);
            gpus.Add(new Gpu(i, Encoding.ASCII.GetString(name).TrimEnd('\0'), (long)total));
        }
        return gpus;
    }

    /// <summary>Bytes in use on the current CUDA context's device (total minus free), or null without a driver/context.</summary>
    public static long? UsedBytes()
    {
        if (!Initialized.Value) return null;
        return Driver.cuMemGetInfo_v2(out nuint free, out nuint total) == 0 ? (long)(total - free) : null;
    }

    static class Driver
    {
        const string Lib = "libcuda.so.1";
        [DllImport(Lib)] public static extern int cuInit(uint flags);
        [DllImport(Lib)] public static extern int cuDeviceGetCount(out int count);
        [DllImport(Lib)] public static extern int cuDeviceGet(out int device, int ordinal);
        [DllImport(Lib)] public static extern int cuDeviceGetName(byte[] name, int len, int device);
        [DllImport(Lib)] public static extern int cuDeviceTotalMem_v2(out nuint bytes, int device);
        [DllImport(Lib)] public static extern int cuMemGetInfo_v2(out nuint free, out nuint total);
    }
}
