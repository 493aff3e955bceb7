using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// Forward and backward of one micro-batch of the unified M3 loss on every replica (replica r takes its own
/// slice of the global batch). Either one pass with the whole micro-batch in the graph, or, with a sub-batch
/// size, <see cref="GradCache"/>'s two passes so memory is bounded by one sub-batch. Gradients accumulate
/// into each replica's parameters; the caller reduces them. Every encoding gets a dropout seed derived
/// from (run seed, micro-step, replica, sub-batch), so dropout is replayed exactly by GradCache and by a
/// resumed run.
/// </summary>
public sealed class M3StepRunner(ReplicaSet<M3Model> replicas, M3BatchLoss loss, int? subBatchSize, long seed) : ITrainingObjective
{
    public ReplicaSet<M3Model> Replicas { get; } = replicas;
    public M3BatchLoss Loss { get; } = loss;

    /// <summary>Test seam: replica r fails (as an out-of-memory or driver error would) at a micro-step.</summary>
    public Func<int, long, bool>? InjectFailure { get; init; }

    /// <summary>
    /// Called when the loss of a micro-batch is computed (<see cref="StepPhase.Forward"/>) and when its gradients are
    /// in (<see cref="StepPhase.Backward"/>); <c>m3train bench</c> synchronizes the device there to split the step's time.
    /// Null in training.
    /// </summary>
    public Action<StepPhase>? PhaseEnd { get; set; }

    bool _healthRequested;
    SparseHealthFigures? _health;

    public void RequestHealth() => _healthRequested = true;

    public IReadOnlyDictionary<string, double> TakeHealth()
    {
        var figures = _health;
        _health = null;
        if (figures is null) return new Dictionary<string, double>();
        return new Dictionary<string, double>
        {
            ["sparse_active_per_text"] = figures.MeanActiveTokens,
            ["sparse_zero_share"] = figures.AllZeroShare,
            ["sparse_mean_weight"] = figures.MeanActiveWeight,
            ["colbert_self_similarity"] = figures.ColbertSelfSimilarity,
        };
    }

    /// <summary>On a requested step: sparse/multi-vector health of every text the step encoded (one host read).</summary>
    void MeasureHealth(IEnumerable<M3Representations> reps)
    {
        if (!_healthRequested) return;
        _healthRequested = false;
        _health = reps.Select(SparseHealth.Measure).Aggregate(SparseHealthFigures.Empty, (a, b) => a + b);
    }

    void MaybeFail(int replica, long microStep)
    {
        if (InjectFailure?.Invoke(replica, microStep) == true)
            throw new InvalidOperationException($"injected failure in replica {replica} at micro-step {microStep}");
    }

    /// <summary>
    /// Accumulates <c>scale · ∇loss</c> for <paramref name="batches"/> (one per replica) and returns the loss and its
    /// parts (unscaled, detached, on the first replica's device).
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> Backward(IReadOnlyList<TrainBatch> batches, long microStep, double scale = 1.0)
    {
        if (batches.Count != Replicas.Replicas.Count)
            throw new ArgumentException($"one batch per replica: {batches.Count} batches for {Replicas.Replicas.Count} replicas");
        var parts = subBatchSize is int s ? TwoPass(batches, microStep, scale, s) : OnePass(batches, microStep, scale);
        PhaseEnd?.Invoke(StepPhase.Backward);
        return parts;
    }

    IReadOnlyDictionary<string, Tensor> OnePass(IReadOnlyList<TrainBatch> batches, long microStep, double scale)
    {
        var encoded = Replicas.RunOnAll(r =>
        {
            MaybeFail(r, microStep);
            var model = Replicas.Replicas[r];
            var device = Replicas.Devices[r];
            using var t = batches[r].ToTensors(device);
            // Padding is read from the host batch: asking the mask on the device would stall the host.
            var q = model.Encode(t.QueryIds, t.QueryMask, ChunkSeed(microStep, r, 0, 0), batches[r].Queries.HasPadding());
            var p = model.Encode(t.PassageIds!, t.PassageMask!, ChunkSeed(microStep, r, 1, 0), batches[r].Passages!.HasPadding());
            return (q, p);
        });
        try
        {
            var parts = Loss.Compute(encoded.Select(e => e.q).ToList(), encoded.Select(e => e.p).ToList(), batches, microStep);
            PhaseEnd?.Invoke(StepPhase.Forward);
            MeasureHealth(encoded.SelectMany(e => new[] { e.q, e.p }));
            (parts["loss"] * scale).backward();
            return Detached(parts);
        }
        finally
        {
            foreach (var (q, p) in encoded) { q.Dispose(); p.Dispose(); }
        }
    }

    IReadOnlyDictionary<string, Tensor> TwoPass(IReadOnlyList<TrainBatch> batches, long microStep, double scale, int subBatch)
    {
        var chunks = new List<EncodeChunk>();
        for (int r = 0; r < batches.Count; r++)
        {
            var model = Replicas.Replicas[r];
            var device = Replicas.Devices[r];
            AddChunks(chunks, $"q{r}", Pieces(batches[r].Queries, batches[r].QuerySubBatches, subBatch), model, device, microStep, r, 0);
            AddChunks(chunks, $"p{r}", Pieces(batches[r].Passages!, batches[r].PassageSubBatches, subBatch), model, device, microStep, r, 1);
        }
        var parts = GradCache.Step(chunks, reps =>
        {
            var qs = Enumerable.Range(0, batches.Count).Select(r => M3RepresentationList.FromList(reps[$"q{r}"])).ToList();
            var ps = Enumerable.Range(0, batches.Count).Select(r => M3RepresentationList.FromList(reps[$"p{r}"])).ToList();
            var result = new Dictionary<string, Tensor>(Loss.Compute(qs, ps, batches, microStep));
            MeasureHealth(qs.Concat(ps));
            result["objective"] = result["loss"] * scale;
            return result;
        }, lossKey: "objective", concat: M3RepresentationList.ConcatPadded, lossComputed: () => PhaseEnd?.Invoke(StepPhase.Forward));
        return parts.Where(kv => kv.Key != "objective").ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    void AddChunks(List<EncodeChunk> chunks, string group, IReadOnlyList<EncodedBatch> pieces, M3Model model, Device device,
        long microStep, int replica, int kind)
    {
        for (int i = 0; i < pieces.Count; i++)
        {
            var piece = pieces[i];
            long chunkSeed = ChunkSeed(microStep, replica, kind, i);
            chunks.Add(new EncodeChunk(group, () =>
            {
                MaybeFail(replica, microStep);
                var (ids, mask) = piece.ToTensors(device);
                return M3RepresentationList.ToList(model.Encode(ids, mask, chunkSeed, piece.HasPadding()));
            }, chunkSeed));
        }
    }

    /// <summary>The sub-batches of a padded batch: the collator's own (each padded to its longest text) or row slices.</summary>
    internal static IReadOnlyList<EncodedBatch> Pieces(EncodedBatch whole, IReadOnlyList<EncodedBatch>? collated, int subBatch)
    {
        if (collated is not null) return collated;
        var pieces = new List<EncodedBatch>();
        int l = whole.SequenceLength;
        for (int start = 0; start < whole.BatchSize; start += subBatch)
        {
            int n = Math.Min(subBatch, whole.BatchSize - start);
            pieces.Add(new EncodedBatch(whole.InputIds[(start * l)..((start + n) * l)], whole.AttentionMask[(start * l)..((start + n) * l)], n, l));
        }
        return pieces;
    }

    long ChunkSeed(long microStep, int replica, int kind, int index) =>
        DropoutReplay.Mix(DropoutReplay.Mix(DropoutReplay.Mix(seed, microStep), replica * 2 + kind), index);

    static IReadOnlyDictionary<string, Tensor> Detached(IReadOnlyDictionary<string, Tensor> parts) =>
        parts.ToDictionary(kv => kv.Key, kv => kv.Value.detach());
}
