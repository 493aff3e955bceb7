using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The unified M3 objective (<see cref="M3BatchLoss"/>) over every replica, each taking its own slice of the global
/// batch: either one pass with the whole micro-batch in the graph, or, with a sub-batch size, <see cref="GradCache"/>'s
/// two passes so memory is bounded by one sub-batch. Gradients accumulate into each replica's parameters; the trainer
/// reduces them. Every encoding gets a dropout seed derived from (run seed, micro-step, rank, queries or passages,
/// sub-batch), so dropout is replayed exactly by GradCache and by a resumed run. Fine-tuning encodes every part
/// (<see cref="EncodingParts.All"/>: the health figures read the sparse and multi-vector outputs of every head);
/// contrastive pretraining runs it with the dense head and encodes only the dense part, so GradCache caches [N, D]
/// embeddings and nothing of size L.
/// </summary>
/// <param name="replicas">The model replicas, one per device.</param>
/// <param name="loss">The batch loss and the heads it trains.</param>
/// <param name="subBatchSize">Texts per GradCache piece, for every length bin or per bin; null: one pass over the whole micro-batch.</param>
/// <param name="seed">The run's seed, which the dropout seeds derive from.</param>
/// <param name="parts">What each encoding computes.</param>
/// <param name="alarm">Watches the sparse head's health on measured steps (when it trains the sparse head); null: none.</param>
/// <param name="denseAlarm">Watches the dense scores of positives and negatives on measured steps (when it trains the normalized dense head); null: none.</param>
public sealed class UnifiedFinetuneObjective(IReplicaGroup<M3Model> replicas, M3BatchLoss loss, SubBatching subBatchSize, long seed,
    EncodingParts parts = EncodingParts.All, SparseCollapseAlarm? alarm = null, DenseCollapseAlarm? denseAlarm = null) : ITrainingObjective
{
    const int QueryStream = 0, PassageStream = 1;

    public IReplicaGroup<M3Model> Replicas { get; } = replicas;
    public M3BatchLoss Loss { get; } = loss;

    /// <summary>
    /// Called when the loss of a micro-batch is computed (<see cref="StepPhase.Forward"/>) and when its gradients are
    /// in (<see cref="StepPhase.Backward"/>); <c>m3train bench</c> synchronizes the device there to split the step's time.
    /// Null in training.
    /// </summary>
    public Action<StepPhase>? PhaseEnd { get; set; }

    public IReadOnlyList<TrainedModule> Modules => [];

    /// <summary>
    /// Accumulates <c>Scale · ∇loss</c> for <paramref name="batches"/> (one per replica). The metrics are the loss's parts,
    /// <c>masked_negatives</c> and, on a measured step, the sparse and multi-vector health of every text it encoded.
    /// </summary>
    public ObjectiveStep Step(IReadOnlyList<TrainBatch> batches, StepContext context)
    {
        if (batches.Count != Replicas.Replicas.Count)
            throw new ArgumentException($"one batch per replica: {batches.Count} batches for {Replicas.Replicas.Count} replicas");
        if (batches.FirstOrDefault(b => b.Passages is null) is { } texts)
            throw new ArgumentException($"{texts.DatasetName}: a batch of text rows has no passages to score");
        var (result, health) = subBatchSize.Of(batches[0].Bin) is int s ? TwoPass(batches, context, s) : OnePass(batches, context);
        PhaseEnd?.Invoke(StepPhase.Backward);

        var figures = new Dictionary<string, double> { ["masked_negatives"] = result.MaskedColumns };
        if (health is not null)
        {
            figures["sparse_active_per_text"] = health.MeanActiveTokens;
            figures["sparse_zero_share"] = health.AllZeroShare;
            figures["sparse_mean_weight"] = health.MeanActiveWeight;
            figures["colbert_self_similarity"] = health.ColbertSelfSimilarity;
            alarm?.Observe(health.AllZeroShare, context.Step);
        }
        if (context.Measure && denseAlarm is not null && result.Parts.TryGetValue("dense_pos", out var pos) && result.Parts.TryGetValue("dense_neg", out var neg))
        {
            // One host read of both, on a logged step only.
            var scores = stack([pos.to(ScalarType.Float32), neg.to(pos.device).to(ScalarType.Float32)]).cpu().data<float>().ToArray();
            denseAlarm.Observe(scores[0], scores[1], context.Step);
        }
        string? alarms = string.Join("; ", new[] { alarm?.Current, denseAlarm?.Current }.OfType<string>());
        return new ObjectiveStep(result.Loss.detach(), result.Parts, figures, alarms.Length > 0 ? alarms : null);
    }

    (M3BatchLossResult, SparseHealthFigures?) OnePass(IReadOnlyList<TrainBatch> batches, StepContext context)
    {
        var encoded = Replicas.RunOnAll(r =>
        {
            var model = Replicas.Replicas[r];
            using var t = batches[r].ToTensors(Replicas.Devices[r]);
            // Padding is read from the host batch: asking the mask on the device would stall the host.
            var q = model.Encode(t.QueryIds, t.QueryMask, DropoutSeed(context.MicroStep, r, QueryStream, 0), batches[r].Queries.HasPadding(), parts);
            var p = model.Encode(t.PassageIds!, t.PassageMask!, DropoutSeed(context.MicroStep, r, PassageStream, 0), batches[r].Passages!.HasPadding(), parts);
            return (q, p);
        });
        try
        {
            var qs = encoded.Select(e => e.q).ToList();
            var ps = encoded.Select(e => e.p).ToList();
            var result = Loss.Compute(Replicas, qs, ps, batches, context.MicroStep);
            PhaseEnd?.Invoke(StepPhase.Forward);
            var health = context.Measure ? Health(qs.Concat(ps)) : null;
            (result.Loss * context.Scale).backward();
            return (result, health);
        }
        finally
        {
            foreach (var (q, p) in encoded) { q.Dispose(); p.Dispose(); }
        }
    }

    (M3BatchLossResult, SparseHealthFigures?) TwoPass(IReadOnlyList<TrainBatch> batches, StepContext context, int subBatch)
    {
        // Pieces in the order queries then passages of replica 0, then of replica 1, ...; each replica's two ranges
        // are concatenated back into its representations for the loss.
        var pieces = new List<Func<M3Representations>>();
        var queryRanges = new List<Range>();
        var passageRanges = new List<Range>();
        for (int r = 0; r < batches.Count; r++)
        {
            queryRanges.Add(AddPieces(pieces, batches[r].QueryPieces(subBatch), context.MicroStep, r, QueryStream));
            passageRanges.Add(AddPieces(pieces, batches[r].PassagePieces(subBatch), context.MicroStep, r, PassageStream));
        }
        SparseHealthFigures? health = null;
        var result = GradCache.Step(pieces, cached =>
        {
            var qs = queryRanges.Select(range => M3Representations.Concat(cached.Take(range).ToList())).ToList();
            var ps = passageRanges.Select(range => M3Representations.Concat(cached.Take(range).ToList())).ToList();
            var batchLoss = Loss.Compute(Replicas, qs, ps, batches, context.MicroStep);
            if (context.Measure) health = Health(qs.Concat(ps));
            return (batchLoss.Loss * context.Scale, batchLoss);
        }, lossComputed: () => PhaseEnd?.Invoke(StepPhase.Forward));
        return (result, health);
    }

    Range AddPieces(List<Func<M3Representations>> pieces, IReadOnlyList<EncodedBatch> batch, long microStep, int replica, int stream)
    {
        int start = pieces.Count;
        var model = Replicas.Replicas[replica];
        var device = Replicas.Devices[replica];
        for (int i = 0; i < batch.Count; i++)
        {
            var piece = batch[i];
            long dropoutSeed = DropoutSeed(microStep, replica, stream, i);
            // Uploaded at the first encoding and kept for the second, so the ids go to the device once.
            (Tensor Ids, Tensor Mask)? inputs = null;
            pieces.Add(() =>
            {
                var (ids, mask) = inputs ??= piece.ToTensors(device);
                return model.Encode(ids, mask, dropoutSeed, piece.HasPadding(), parts);
            });
        }
        return start..pieces.Count;
    }

    /// <summary>Sparse and multi-vector health of every text encoded (one host read per batch of representations).</summary>
    SparseHealthFigures? Health(IEnumerable<M3Representations> reps) =>
        parts == EncodingParts.All ? reps.Select(SparseHealth.Measure).Aggregate(SparseHealthFigures.Empty, (a, b) => a + b) : null;

    /// <summary>The dropout seed of sub-batch <paramref name="index"/> of a replica's queries or passages, the same in both GradCache passes and on resume.</summary>
    public long DropoutSeed(long microStep, int replica, int stream, int index) =>
        DropoutReplay.Mix(DropoutReplay.Mix(DropoutReplay.Mix(seed, microStep), Replicas.Rank(replica) * 2 + stream), index);
}
