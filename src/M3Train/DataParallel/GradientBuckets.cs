using System.Diagnostics;
using M3Train.Distributed;
using M3Train.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.DataParallel;

/// <summary>
/// Averages the gradients of this rank's trainable parameters over all ranks, in flat buckets of about 25 MB (one
/// all-reduce per bucket instead of one per tensor), so that every rank then takes the same optimizer step.
/// </summary>
/// <remarks>
/// <para><b>Overlap.</b> TorchSharp has no gradient hooks on parameters, but the checkpointed encoder layer's backward
/// is ours (<see cref="ILayerGradientObserver"/>): once the objective says the step's final backward is next
/// (<see cref="FinalBackwardNext"/>), each layer's parameters are complete when every run of that layer recorded since
/// has been back-propagated, and a bucket is all-reduced as soon as all of its parameters are complete, while the
/// layers below are still in backward. Buckets hold the layers top to bottom (the order backward finishes them), then
/// everything else (embeddings, heads, modules beside the model), which is reduced in <see cref="Reduce"/>. Buckets are
/// started strictly in this order, so every rank starts the same all-reduces in the same order. Without activation
/// checkpointing (or with <c>overlap</c> off) every bucket is reduced in <see cref="Reduce"/>, after backward.</para>
/// <para><b>Parameters without a gradient.</b> A parameter no rank produced a gradient for keeps none (AdamW skips it,
/// as in a single process); one that only some ranks did gets the average with zeros for the others. Each bucket
/// carries one flag per parameter for this, after its gradients.</para>
/// <para><b>Memory.</b> The buckets are persistent buffers of the trainable parameters' size, allocated once.</para>
/// </remarks>
public sealed class GradientBuckets : ILayerGradientObserver, IDisposable
{
    /// <summary>25 MB, DDP's default: large enough that per-collective latency is small, small enough to start early.</summary>
    public const long DefaultBucketBytes = 25L << 20;

    readonly DataParallelGroup _group;
    readonly bool _overlap;
    readonly List<Bucket> _buckets = [];
    readonly Dictionary<XlmRobertaLayer, LayerUse> _layers = new(ReferenceEqualityComparer.Instance);
    readonly object _gate = new();
    bool _final;
    int _launched;
    Exception? _failure;
    XlmRobertaModel? _observed;

    /// <summary>
    /// Buckets over <paramref name="backbone"/>'s trainable <paramref name="parameters"/> that its checkpointed layers
    /// tell when their gradients are final (with ranks to average over); disposing the buckets stops that.
    /// </summary>
    public static GradientBuckets Observing(DataParallelGroup group, IReadOnlyList<Parameter> parameters, XlmRobertaModel backbone, bool overlap = true)
    {
        var buckets = new GradientBuckets(group, parameters, backbone.Encoder.Layers, overlap: overlap);
        if (group.WorldSize > 1)
        {
            backbone.Compute.GradientObserver = buckets;
            buckets._observed = backbone;
        }
        return buckets;
    }

    /// <param name="group">The ranks to average over; a world of one reduces nothing.</param>
    /// <param name="parameters">The trainable parameters (the optimizer's).</param>
    /// <param name="layers">The encoder's layers, bottom to top, whose checkpointed backward reports completion.</param>
    /// <param name="bucketBytes">Bucket size (a parameter larger than it gets a bucket of its own).</param>
    /// <param name="overlap">Start buckets during backward as their layers finish; false: all after backward.</param>
    public GradientBuckets(DataParallelGroup group, IReadOnlyList<Parameter> parameters, IReadOnlyList<XlmRobertaLayer> layers,
        long bucketBytes = DefaultBucketBytes, bool overlap = true)
    {
        _group = group;
        _overlap = overlap;
        if (group.WorldSize == 1) return;
        var trainable = parameters.ToHashSet(ReferenceEqualityComparer.Instance);
        var owner = new Dictionary<Parameter, XlmRobertaLayer>(ReferenceEqualityComparer.Instance);
        var ordered = new List<List<Parameter>>();
        foreach (var layer in layers.Reverse())
        {
            var own = layer.parameters().Where(trainable.Contains).ToList();
            foreach (var p in own) owner[p] = layer;
            if (own.Count > 0) ordered.Add(own);
        }
        ordered.Add(parameters.Reverse().Where(p => !owner.ContainsKey(p)).ToList());

        foreach (var run in ordered)
        {
            // A bucket never mixes layer parameters with the rest (which are only complete after backward) or dtypes.
            var pending = new List<Parameter>();
            long bytes = 0;
            foreach (var p in run)
            {
                long size = p.numel() * p.element_size();
                if (pending.Count > 0 && (bytes + size > bucketBytes || p.dtype != pending[0].dtype))
                {
                    AddBucket(pending, owner);
                    pending = [];
                    bytes = 0;
                }
                pending.Add(p);
                bytes += size;
            }
            if (pending.Count > 0) AddBucket(pending, owner);
        }
    }

    /// <summary>Seconds the last <see cref="Reduce"/> blocked: the communication backward did not hide, and the copies back.</summary>
    public double LastReduceSeconds { get; private set; }

    /// <summary>Buckets the last step started during backward (the rest started in <see cref="Reduce"/>).</summary>
    public int LastOverlappedBuckets { get; private set; }

    public int BucketCount => _buckets.Count;

    void AddBucket(List<Parameter> members, Dictionary<Parameter, XlmRobertaLayer> owner)
    {
        long elements = members.Sum(p => p.numel());
        // Gradients, then one has-a-gradient flag per parameter.
        var flat = empty(elements + members.Count, members[0].dtype, _group.Device).DetachFromDisposeScope();
        var bucket = new Bucket(members, flat);
        _buckets.Add(bucket);
        foreach (var member in members)
            if (owner.TryGetValue(member, out var layer))
            {
                if (!_layers.TryGetValue(layer, out var use)) _layers[layer] = use = new LayerUse();
                use.Members[bucket] = use.Members.GetValueOrDefault(bucket) + 1;
            }
    }

    /// <summary>
    /// The next forward and backward complete this step's gradients (the last micro-batch, or its last GradCache piece):
    /// from now on a bucket is started as soon as the backward of every layer it holds is done. Call it only when every
    /// earlier backward of the step has returned.
    /// </summary>
    public void FinalBackwardNext()
    {
        if (_buckets.Count == 0 || !_overlap) return;
        lock (_gate)
        {
            _final = true;
            foreach (var use in _layers.Values) use.Pending = 0;
        }
    }

    public void Recorded(XlmRobertaLayer layer)
    {
        lock (_gate)
            if (_final && _layers.TryGetValue(layer, out var use)) use.Pending++;
    }

    public void Accumulated(XlmRobertaLayer layer)
    {
        lock (_gate)
        {
            if (!_final || !_layers.TryGetValue(layer, out var use) || use.Pending == 0 || --use.Pending > 0) return;
            foreach (var (bucket, count) in use.Members) bucket.Waiting -= count;
            LaunchReady(all: false);
        }
    }

    /// <summary>
    /// Averages the step's gradients over the ranks: starts the buckets backward has not started, waits for all, and
    /// writes the averages into the parameters' gradients. Every rank calls it once per step, after the last backward.
    /// </summary>
    public void Reduce()
    {
        _group.ThrowIfBackwardFailed();
        if (_buckets.Count == 0) return;
        var clock = Stopwatch.StartNew();
        int overlapped;
        lock (_gate)
        {
            _final = false;
            overlapped = _launched;
            LaunchReady(all: true);
        }
        try
        {
            if (_failure is { } failure) throw new DistributedException($"starting a gradient all-reduce failed: {failure.Message}", failure);
            foreach (var bucket in _buckets) bucket.Work!.Wait();
            WriteBack();
        }
        finally
        {
            lock (_gate)
            {
                foreach (var bucket in _buckets) bucket.Reset();
                _launched = 0;
                _failure = null;
            }
        }
        LastOverlappedBuckets = overlapped;
        LastReduceSeconds = clock.Elapsed.TotalSeconds;
    }

    /// <summary>Starts the buckets in order while the next one is complete (or all of them).</summary>
    void LaunchReady(bool all)
    {
        while (_failure is null && _launched < _buckets.Count && (all || _buckets[_launched].Waiting == 0))
        {
            try
            {
                _buckets[_launched].Start(_group.Collectives);
                _launched++;
            }
            catch (Exception e)
            {
                // Called from backward, where it cannot throw: Reduce reports it.
                _failure = e;
            }
        }
    }

    void WriteBack()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flags = cat(_buckets.Select(b => b.Flags).ToList()).to(ScalarType.Float32).cpu().data<float>().ToArray();
        int k = 0;
        foreach (var bucket in _buckets)
        {
            long offset = 0;
            foreach (var p in bucket.Members)
            {
                long n = p.numel();
                if (flags[k++] > 0)
                {
                    var average = bucket.Flat[TensorIndex.Slice(offset, offset + n)].view_as(p);
                    if (p.grad is { } grad) grad.copy_(average);
                    else p.grad = average.clone();
                }
                offset += n;
            }
        }
    }

    public void Dispose()
    {
        if (_observed is not null) _observed.Compute.GradientObserver = null;
        foreach (var bucket in _buckets) bucket.Flat.Dispose();
    }

    /// <summary>How many of a layer's parameters each bucket holds, and the layer's runs not yet back-propagated.</summary>
    sealed class LayerUse
    {
        public Dictionary<Bucket, int> Members { get; } = [];
        public int Pending { get; set; }
    }

    sealed class Bucket(List<Parameter> members, Tensor flat)
    {
        readonly long _elements = members.Sum(p => p.numel());

        public List<Parameter> Members { get; } = members;
        public Tensor Flat { get; } = flat;

        /// <summary>
        /// Members not yet complete in this step's final pass. Only a layer's backward completes members, so a bucket of
        /// parameters outside the layers never gets to 0: it starts in <see cref="Reduce"/>.
        /// </summary>
        public int Waiting { get; set; } = members.Count;

        public ICollectiveWork? Work { get; private set; }

        public Tensor Flags => Flat[TensorIndex.Slice(_elements, _elements + Members.Count)];

        /// <summary>Copies the members' gradients (zeros where a member has none) and their flags in, and starts the average.</summary>
        public void Start(ICollectives collectives)
        {
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                var flags = new float[Members.Count];
                long offset = 0;
                for (int i = 0; i < Members.Count; i++)
                {
                    var p = Members[i];
                    long n = p.numel();
                    var slot = Flat[TensorIndex.Slice(offset, offset + n)];
                    if (p.grad is { } grad)
                    {
                        slot.copy_(grad.flatten());
                        flags[i] = 1;
                    }
                    else slot.zero_();
                    offset += n;
                }
                Flags.copy_(tensor(flags));
            }
            Work = collectives.StartAllReduce(Flat, ReduceOp.Average);
        }

        public void Reset()
        {
            Work = null;
            Waiting = Members.Count;
        }
    }
}
