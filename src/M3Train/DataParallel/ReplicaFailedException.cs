using static TorchSharp.torch;

namespace M3Train.DataParallel;

/// <summary>A data-parallel replica failed; all replicas stopped. Carries which one and why.</summary>
public sealed class ReplicaFailedException(int replica, Device device, Exception cause)
    : M3TrainException($"replica {replica} on {device} failed: {cause.Message}", cause)
{
    public int Replica { get; } = replica;
}
