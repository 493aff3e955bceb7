using static TorchSharp.torch;

namespace M3Train.DataParallel;

/// <summary>
/// Gathers the replicas' representations onto one device for cross-device negatives (docs/METHOD.md, "Cross-device negatives",
/// dense only). The copies keep the autograd graph, so every replica's slot receives its exact gradient
/// (in-process replicas need no all_gather that drops the other slots' gradients, as torch.distributed does).
/// </summary>
public static class CrossDeviceGather
{
    /// <summary>Concatenates <paramref name="perReplica"/> (replica order, batch on dim 0) on <paramref name="device"/>.</summary>
    public static Tensor Gather(IReadOnlyList<Tensor> perReplica, Device device) =>
        perReplica.Count == 1 ? perReplica[0].to(device) : cat(perReplica.Select(t => t.to(device)).ToList(), 0);
}
