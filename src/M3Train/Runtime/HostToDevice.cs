using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Runtime;

/// <summary>
/// Host-to-device copies that do not make the host wait for the device. A plain copy from ordinary (pageable)
/// memory to a CUDA device synchronizes with the device, so every batch or mask copied in the middle of a step
/// would stall the host until the queued kernels ran; a copy from pinned memory with <c>non_blocking</c> is
/// queued like a kernel instead (libtorch keeps the pinned block alive until the copy has run).
/// </summary>
public static class HostToDevice
{
    /// <summary><paramref name="host"/> (a CPU tensor, left as it is) on <paramref name="device"/>.</summary>
    public static Tensor Copy(Tensor host, Device device)
    {
        if (device.type != DeviceType.CUDA) return host.to(device);
        using var pinned = host.pin_memory();
        return pinned.to(device, non_blocking: true);
    }
}
