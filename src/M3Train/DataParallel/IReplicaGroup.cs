using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.DataParallel;

/// <summary>
/// The data-parallel seam: the replicas of one module that this process trains, and the collective operations that
/// keep them one model. The training loop and the objectives use only this, so how replicas talk (threads in one
/// process today, <see cref="ReplicaSet{TModule}"/>; one process per device with NCCL or TCP collectives later)
/// changes behind it. Replica r of this process has rank <see cref="Rank"/>(r) in a world of <see cref="WorldSize"/>.
/// </summary>
public interface IReplicaGroup<out TModule> where TModule : nn.Module
{
    /// <summary>The replicas this process drives, in rank order.</summary>
    IReadOnlyList<TModule> Replicas { get; }

    /// <summary>The device of each of <see cref="Replicas"/>.</summary>
    IReadOnlyList<Device> Devices { get; }

    /// <summary>The replica whose parameters the optimizer steps and whose weights are saved.</summary>
    TModule Master { get; }

    /// <summary>Replicas in the whole run (all processes).</summary>
    int WorldSize { get; }

    /// <summary>The rank of this process's replica <paramref name="replica"/>: its slice of every global batch.</summary>
    int Rank(int replica);

    /// <summary>Runs <paramref name="work"/> for every replica of this process, concurrently; a failure names its replica (<see cref="ReplicaFailedException"/>).</summary>
    T[] RunOnAll<T>(Func<int, T> work);

    /// <summary>
    /// Every rank's tensor of <paramref name="perReplica"/> (this process's, replica order; batch on dim 0) concatenated in
    /// rank order on <paramref name="device"/>: cross-device negatives. The slots of this process keep their autograd graph.
    /// </summary>
    Tensor Gather(IReadOnlyList<Tensor> perReplica, Device device);

    /// <summary>Sums every replica's gradients into <see cref="Master"/>'s, after the backward passes of a step.</summary>
    void ReduceGradients();

    /// <summary>Copies <see cref="Master"/>'s weights to every other replica, after each optimizer step.</summary>
    void BroadcastWeights();

    /// <summary>True when every replica's weights equal <see cref="Master"/>'s bit for bit (checked before a checkpoint is written).</summary>
    bool WeightsIdentical();
}
