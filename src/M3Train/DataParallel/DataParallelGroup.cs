using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using M3Train.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.DataParallel;

/// <summary>
/// This process's place in data-parallel training: it trains one replica of the model on <see cref="Device"/> as rank
/// <see cref="Rank"/> of <see cref="WorldSize"/>, one process per device. What the ranks share goes through
/// <see cref="Collectives"/>: dense embeddings for cross-device negatives (<see cref="Gather"/>), the host-side rows of
/// the global batch (<see cref="AllGatherBytes"/>), small sums for metrics and denominators (<see cref="Sum"/>), the
/// gradients (<see cref="GradientBuckets"/>) and the weight check before a checkpoint (<see cref="VerifyIdentical"/>).
/// A world of one (<see cref="Alone"/>) runs the same code with collectives that do nothing.
/// </summary>
public sealed class DataParallelGroup
{
    ExceptionDispatchInfo? _backwardFailure;

    /// <param name="collectives">The job's collectives on this rank's device (<see cref="DistributedContext.Collectives"/>).</param>
    /// <param name="device">This rank's device.</param>
    public DataParallelGroup(ICollectives collectives, Device device)
    {
        Collectives = collectives;
        Device = device;
    }

    /// <summary>A world of one on <paramref name="device"/>.</summary>
    public static DataParallelGroup Alone(Device device) => new(new SingleProcessCollectives(), device);

    public ICollectives Collectives { get; }
    public Device Device { get; }
    public int Rank => Collectives.Rank;
    public int WorldSize => Collectives.WorldSize;

    /// <summary>Rank 0: it writes the run folder, logs metrics and shows progress.</summary>
    public bool IsMain => Rank == 0;

    /// <summary>
    /// Gradients <see cref="RankGather"/>'s backward handed to autograd, disposed at this group's next gather (autograd
    /// holds its own reference once backward has returned; per group, so no other rank's thread disposes them early).
    /// </summary>
    internal ConcurrentQueue<Tensor> SpentGradients { get; } = new();

    /// <summary>
    /// Every rank's <paramref name="local"/> [B, ...] concatenated in rank order, [W·B, ...], with an autograd graph back
    /// to this rank's slot (cross-device negatives). <paramref name="exactGradient"/>: the gradient of the gathered tensor
    /// is summed over ranks before this rank takes its slice, so each slot gets the gradient of every rank's loss
    /// (W ranks with B rows each train as one with W·B); otherwise each rank keeps the gradient of its own loss in its
    /// own slot, as FlagEmbedding's all_gather does. Every rank must call it, in the same order.
    /// </summary>
    public Tensor Gather(Tensor local, bool exactGradient) =>
        WorldSize == 1 ? local : RankGather.Run(this, local, exactGradient);

    /// <summary>The sum over ranks of <paramref name="value"/> (a small tensor on <see cref="Device"/>), as a new tensor without a graph.</summary>
    public Tensor Sum(Tensor value)
    {
        var total = value.detach().contiguous().clone();
        if (WorldSize > 1) Collectives.AllReduce(total, ReduceOp.Sum);
        return total;
    }

    /// <summary>The mean over ranks of <paramref name="value"/> (see <see cref="Sum"/>).</summary>
    public Tensor Mean(Tensor value) => WorldSize == 1 ? value.detach().clone() : Sum(value).div_(WorldSize);

    /// <summary>Every rank's <paramref name="payload"/>, in rank order (payloads may differ in length): host data of the global batch.</summary>
    public IReadOnlyList<byte[]> AllGatherBytes(byte[] payload)
    {
        if (WorldSize == 1) return [payload];
        using var scope = NewDisposeScope();
        // Collectives move equal shapes: lengths first, then every payload padded to the longest.
        var lengths = Collectives.AllGather(tensor(new long[] { payload.Length }, device: Device)).cpu().data<long>().ToArray();
        long longest = Math.Max(1, lengths.Max());
        var padded = new byte[longest];
        payload.CopyTo(padded, 0);
        var all = Collectives.AllGather(tensor(padded, device: Device)).cpu().data<byte>().ToArray();   // [W·longest]
        return Enumerable.Range(0, WorldSize).Select(r => all.AsSpan((int)(r * longest), (int)lengths[r]).ToArray()).ToList();
    }

    /// <summary>
    /// Fails naming the ranks whose <paramref name="tensors"/> differ from rank 0's (before a checkpoint is written);
    /// returns the digest every rank shares, or null in a world of one (nothing to compare).
    /// </summary>
    public long? VerifyIdentical(IEnumerable<Tensor> tensors) =>
        WorldSize > 1 ? WeightChecksum.Verify(Collectives, tensors, Device) : null;

    /// <summary>
    /// Keeps a collective's failure inside a backward pass, where an exception cannot unwind through the autograd engine;
    /// <see cref="ThrowIfBackwardFailed"/> rethrows it once the backward has returned.
    /// </summary>
    internal void BackwardFailed(Exception error) => Interlocked.CompareExchange(ref _backwardFailure, ExceptionDispatchInfo.Capture(error), null);

    /// <summary>Rethrows a failure kept during the last backward pass (see <see cref="BackwardFailed"/>).</summary>
    public void ThrowIfBackwardFailed() => Interlocked.Exchange(ref _backwardFailure, null)?.Throw();
}
