using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.DataParallel;

/// <summary>
/// Data-parallel replicas of one model in one process (TorchSharp has no torch.distributed): replica 0 is
/// the master whose optimizer steps; after each backward the gradients of all replicas are summed into the
/// master in flat buckets (one device copy per bucket, not per tensor), and after each step the master's
/// weights are copied to the others, so all replicas hold the same weights. All ranks are in this process:
/// replica r is rank r, and gathering keeps every slot's autograd graph (<see cref="CrossDeviceGather"/>).
/// </summary>
public sealed class ReplicaSet<TModule> : IReplicaGroup<TModule> where TModule : nn.Module
{
    readonly List<List<Parameter>> _params;
    readonly long _bucketElements;

    public IReadOnlyList<TModule> Replicas { get; }
    public IReadOnlyList<Device> Devices { get; }
    public TModule Master => Replicas[0];
    public int WorldSize => Replicas.Count;

    public int Rank(int replica) => replica;

    public Tensor Gather(IReadOnlyList<Tensor> perReplica, Device device) => CrossDeviceGather.Gather(perReplica, device);

    /// <param name="replicas">Modules of identical structure, replica i on <paramref name="devices"/>[i].</param>
    /// <param name="bucketMegabytes">Gradient bucket size for the reduction (fp32 MB).</param>
    public ReplicaSet(IReadOnlyList<TModule> replicas, IReadOnlyList<Device> devices, int bucketMegabytes = 25)
    {
        if (replicas.Count == 0 || replicas.Count != devices.Count)
            throw new ArgumentException("one device per replica");
        Replicas = replicas;
        Devices = devices;
        _params = replicas.Select(r => r.parameters().ToList()).ToList();
        if (_params.Any(p => p.Count != _params[0].Count))
            throw new ArgumentException("replicas differ in structure");
        _bucketElements = bucketMegabytes * 1024L * 1024 / 4;
        BroadcastWeights();
    }

    /// <summary>Copies the master's weights (and requires_grad flags) into every other replica.</summary>
    public void BroadcastWeights()
    {
        using var _ = no_grad();
        for (int r = 1; r < Replicas.Count; r++)
            for (int i = 0; i < _params[0].Count; i++)
            {
                _params[r][i].copy_(_params[0][i]);
                _params[r][i].requires_grad_(_params[0][i].requires_grad);
            }
    }

    /// <summary>Sums every replica's gradients into the master's (buckets of flattened gradients); other replicas' grads are cleared.</summary>
    public void ReduceGradients()
    {
        if (Replicas.Count == 1) return;
        using var scope = NewDisposeScope();
        // Parameters no replica produced a gradient for (e.g. a head outside the loss) keep none.
        var trainable = Enumerable.Range(0, _params[0].Count)
            .Where(i => _params[0][i].requires_grad && _params.Any(p => p[i].grad is not null)).ToList();
        foreach (var bucket in Buckets(trainable))
        {
            var masterGrads = bucket.Select(i => _params[0][i].grad ?? (_params[0][i].grad = zeros_like(_params[0][i]))).ToList();
            var flat = cat(masterGrads.Select(g => g.flatten()).ToList());              // [bucket elements]
            for (int r = 1; r < Replicas.Count; r++)
            {
                var grads = bucket.Select(i => _params[r][i].grad).ToList();
                if (grads.All(g => g is null)) continue;
                var other = cat(bucket.Select((i, k) => (grads[k] ?? zeros_like(_params[r][i])).flatten()).ToList());
                flat.add_(other.to(Devices[0], non_blocking: true));
            }
            long offset = 0;
            foreach (var g in masterGrads)
            {
                long n = g.numel();
                g.copy_(flat[TensorIndex.Slice(offset, offset + n)].view_as(g));
                offset += n;
            }
        }
        for (int r = 1; r < Replicas.Count; r++) Replicas[r].zero_grad();
    }

    IEnumerable<List<int>> Buckets(List<int> indices)
    {
        var bucket = new List<int>();
        long size = 0;
        foreach (int i in indices)
        {
            bucket.Add(i);
            size += _params[0][i].numel();
            if (size >= _bucketElements) { yield return bucket; bucket = []; size = 0; }
        }
        if (bucket.Count > 0) yield return bucket;
    }

    /// <summary>True when every replica's weights equal the master's bit for bit (a cheap periodic check).</summary>
    public bool WeightsIdentical()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        for (int r = 1; r < Replicas.Count; r++)
            for (int i = 0; i < _params[0].Count; i++)
                if (!_params[0][i].equal(_params[r][i].to(Devices[0])).all().item<bool>()) return false;
        return true;
    }

    /// <summary>Runs <paramref name="work"/> for every replica on its own thread and rethrows the first failure with its replica named.</summary>
    public T[] RunOnAll<T>(Func<int, T> work)
    {
        var results = new T[Replicas.Count];
        var errors = new Exception?[Replicas.Count];
        var threads = Enumerable.Range(0, Replicas.Count).Select(r => new Thread(() =>
        {
            try { results[r] = work(r); }
            catch (Exception e) { errors[r] = e; }
        }, maxStackSize: 16 * 1024 * 1024)).ToList();
        if (threads.Count == 1) { results[0] = work(0); return results; }
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        for (int r = 0; r < errors.Length; r++)
            if (errors[r] is { } e)
                throw new ReplicaFailedException(r, Devices[r], e);
        return results;
    }
}
