using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>
/// Collective operations across the ranks of a job, in place on contiguous tensors. Every rank must start the
/// same collectives, with tensors of the same shape and dtype, in the same order; they run in that order.
/// All-reduce results are bit-identical on every rank (each element is reduced once, in an order fixed by the
/// world size, and then copied), so ranks that apply identical updates keep identical weights.
/// </summary>
/// <remarks>
/// Backends: <see cref="TcpRingCollectives"/> for CPU tensors, <see cref="NcclCollectives"/> for CUDA tensors,
/// <see cref="SingleProcessCollectives"/> for a world of one. A rank that fails, stalls past the timeout or
/// dies makes every pending and later collective throw <see cref="DistributedException"/> naming it.
/// </remarks>
public interface ICollectives : IDisposable
{
    int Rank { get; }
    int WorldSize { get; }

    /// <summary>The backend's name, for logs and reports.</summary>
    string Backend { get; }

    /// <summary>Replaces <paramref name="tensor"/> on every rank by the sum (or average) over all ranks.</summary>
    ICollectiveWork StartAllReduce(Tensor tensor, ReduceOp op);

    /// <summary>
    /// Writes every rank's <paramref name="input"/> ([B, ...], the same shape everywhere) into
    /// <paramref name="output"/> ([W·B, ...]) in rank order.
    /// </summary>
    ICollectiveWork StartAllGather(Tensor input, Tensor output);

    /// <summary>Replaces <paramref name="tensor"/> on every rank by rank <paramref name="root"/>'s.</summary>
    ICollectiveWork StartBroadcast(Tensor tensor, int root);

    /// <summary>Returns once every rank has reached it and every collective started before it has completed.</summary>
    void Barrier();

    /// <summary>Fails every pending and later collective with <paramref name="reason"/> (another rank's failure).</summary>
    void Abort(string reason);
}
