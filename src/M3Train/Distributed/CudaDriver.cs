using System.Runtime.InteropServices;

namespace M3Train.Distributed;

/// <summary>
/// The few CUDA driver calls the NCCL backend needs beside libtorch: the device's primary context (the one
/// libtorch's runtime API uses), a stream of its own, and events to order it against libtorch's stream and to
/// poll for completion without blocking forever. libcuda comes with the NVIDIA driver.
/// </summary>
public static class CudaDriver
{
    const string Lib = "libcuda.so.1";
    const int NotReady = 600;

    /// <summary>
    /// <c>CU_STREAM_LEGACY</c>: libtorch's stream. TorchSharp 0.107 never sets a current stream (its native layer
    /// has no stream API), so libtorch launches every kernel on the device's default stream, which libtorch
    /// builds as the legacy NULL stream (no per-thread default streams).
    /// </summary>
    public const nint LegacyStream = 1;

    /// <summary>Makes device <paramref name="ordinal"/>'s primary context current on this thread and returns it.</summary>
    public static nint UsePrimaryContext(int ordinal)
    {
        Check(Native.cuInit(0), "cuInit");
        Check(Native.cuDeviceGet(out int device, ordinal), $"cuDeviceGet({ordinal})");
        Check(Native.cuDevicePrimaryCtxRetain(out nint context, device), "cuDevicePrimaryCtxRetain");
        Check(Native.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        return context;
    }

    public static void SetCurrent(nint context) => Check(Native.cuCtxSetCurrent(context), "cuCtxSetCurrent");

    /// <summary>A stream that does not synchronize implicitly with the legacy stream, so a stalled NCCL kernel cannot hold up libtorch's.</summary>
    public static nint CreateStream()
    {
        Check(Native.cuStreamCreate(out nint stream, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
        return stream;
    }

    public static void DestroyStream(nint stream) => Native.cuStreamDestroy_v2(stream);

    /// <summary>An event recorded on <paramref name="stream"/> now: it completes when the stream's work so far has.</summary>
    public static nint Record(nint stream)
    {
        Check(Native.cuEventCreate(out nint ev, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate");
        Check(Native.cuEventRecord(ev, stream), "cuEventRecord");
        return ev;
    }

    /// <summary>Work queued on <paramref name="stream"/> after this waits for <paramref name="ev"/>; the host does not.</summary>
    public static void Wait(nint stream, nint ev) => Check(Native.cuStreamWaitEvent(stream, ev, 0), "cuStreamWaitEvent");

    public static bool IsComplete(nint ev)
    {
        int result = Native.cuEventQuery(ev);
        if (result == NotReady) return false;
        Check(result, "cuEventQuery");
        return true;
    }

    /// <summary>Releases the event once it has completed (at once if it has).</summary>
    public static void Destroy(nint ev) => Native.cuEventDestroy_v2(ev);

    static void Check(int result, string call)
    {
        if (result == 0) return;
        string text = Native.cuGetErrorString(result, out nint message) == 0 ? Marshal.PtrToStringUTF8(message) ?? "" : "";
        throw new DistributedException($"{call} failed: CUDA error {result} {text}".TrimEnd() + ".");
    }

    static class Native
    {
        [DllImport(Lib)] public static extern int cuInit(uint flags);
        [DllImport(Lib)] public static extern int cuDeviceGet(out int device, int ordinal);
        [DllImport(Lib)] public static extern int cuDevicePrimaryCtxRetain(out nint context, int device);
        [DllImport(Lib)] public static extern int cuCtxSetCurrent(nint context);
        [DllImport(Lib)] public static extern int cuStreamCreate(out nint stream, uint flags);
        [DllImport(Lib)] public static extern int cuStreamDestroy_v2(nint stream);
        [DllImport(Lib)] public static extern int cuEventCreate(out nint ev, uint flags);
        [DllImport(Lib)] public static extern int cuEventDestroy_v2(nint ev);
        [DllImport(Lib)] public static extern int cuEventRecord(nint ev, nint stream);
        [DllImport(Lib)] public static extern int cuEventQuery(nint ev);
        [DllImport(Lib)] public static extern int cuStreamWaitEvent(nint stream, nint ev, uint flags);
        [DllImport(Lib)] public static extern int cuGetErrorString(int error, out nint text);
    }
}
