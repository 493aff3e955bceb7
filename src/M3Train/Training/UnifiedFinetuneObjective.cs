using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The unified M3 objective (<see cref="M3BatchLoss"/>) on this rank's slice of each global batch: either one pass with
/// the whole micro-batch in the graph, or, with a sub-batch size, <see cref="GradCache"/>'s two passes so memory is
/// bounded by one sub-batch. Gradients accumulate into the model's parameters; the trainer averages them over the
/// ranks. Every encoding gets a dropout seed derived from (run seed, micro-step, rank, queries or passages,
/// sub-batch), so dropout is replayed exactly by GradCache and by a resumed run. Sub-batches come sorted by length
/// (<see cref="SubBatches.ByLength"/>); their representations go back to the batch's order before the loss, so the
/// loss and the gradients are those of the unsorted batch. Fine-tuning encodes every part
/// (<see cref="EncodingParts.All"/>: the health figures read the sparse and multi-vector outputs of every head);
/// contrastive pretraining runs it with the dense head and encodes only the dense part, so GradCache caches [N, D]
/// embeddings and nothing of size L.
/// </summary>
/// <param name="model">This rank's replica of the model, on the group's device.</param>
/// <param name="group">This rank in the data-parallel world (cross-device negatives, host rows of the global batch).</param>
/// <param name="loss">The batch loss and the heads it trains.</param>
/// <param name="subBatchSize">Texts per GradCache piece, for every length bin or per bin; null: one pass over the whole micro-batch.</param>
/// <param name="seed">The run's seed, which the dropout seeds derive from.</param>
/// <param name="parts">What each encoding computes.</param>
/// <param name="alarm">Watches the sparse head's health on measured steps (when it trains the sparse head); null: none.</param>
/// <param name="denseAlarm">Watches the dense scores of positives and negatives on measured steps (when it trains the normalized dense head); null: none.</param>
public sealed class UnifiedFinetuneObjective(M3Model model, DataParallelGroup group, M3BatchLoss loss, SubBatching subBatchSize, long seed,
    EncodingParts parts = EncodingParts.All, SparseCollapseAlarm? alarm = null, DenseCollapseAlarm? denseAlarm = null) : ITrainingObjective
{
    const int QueryStream = 0, PassageStream = 1;

    public M3Model Model { get; } = model;
    public DataParallelGroup Group { get; } = group;
    public M3BatchLoss Loss { get; } = loss;

    /// <summary>
    /// Called when the loss of a micro-batch is computed (<see cref="StepPhase.Forward"/>) and when its gradients are
    /// in (<see cref="StepPhase.Backward"/>); <c>m3train bench</c> synchronizes the device there to split the step's time.
    /// Null in training.
    /// </summary>
    public Action<StepPhase>? PhaseEnd { get; set; }

    public IReadOnlyList<TrainedModule> Modules => [];

    /// <summary>
    /// Accumulates <c>Scale · ∇loss</c> for this rank's <paramref name="batch"/>. The metrics are the loss's parts,
    /// <c>masked_negatives</c>, <c>masked_attention_share</c> (the share of encoder calls that carry an attention mask:
    /// their texts are padded; read from the host batch) and, on a measured step, the sparse and multi-vector health of every text it encoded.
    /// </summary>
    public ObjectiveStep Step(TrainBatch batch, StepContext context)
    {
        if (batch.Passages is null)
            throw new ArgumentException($"{batch.DatasetName}: a batch of text rows has no passages to score");
        using var inputs = Loss.Prepare(Group, batch);
        var (result, health, maskedShare) = subBatchSize.Of(batch.Bin) is int s ? TwoPass(batch, inputs, context, s) : OnePass(batch, inputs, context);
        Group.ThrowIfBackwardFailed();
        PhaseEnd?.Invoke(StepPhase.Backward);

        var figures = new Dictionary<string, double> { ["masked_negatives"] = result.MaskedColumns, ["masked_attention_share"] = maskedShare };
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

    (M3BatchLossResult, SparseHealthFigures?, double) OnePass(TrainBatch batch, M3BatchHostInputs inputs, StepContext context)
    {
        using var t = batch.ToTensors(Group.Device);
        context.FinalBackward?.Invoke();
        // Padding is read from the host batch: asking the mask on the device would stall the host.
        using var q = Model.Encode(t.QueryIds, t.QueryMask, DropoutSeed(context.MicroStep, QueryStream, 0), batch.Queries.HasPadding(), parts);
        using var p = Model.Encode(t.PassageIds!, t.PassageMask!, DropoutSeed(context.MicroStep, PassageStream, 0), batch.Passages!.HasPadding(), parts);
        var result = Loss.Compute(Group, q, p, inputs, context.MicroStep);
        PhaseEnd?.Invoke(StepPhase.Forward);
        var health = context.Measure ? Health([q, p]) : null;
        (result.Loss * context.Scale).backward();
        double maskedShare = ((batch.Queries.HasPadding() ? 1 : 0) + (batch.Passages!.HasPadding() ? 1 : 0)) / 2.0;
        return (result, health, maskedShare);
    }

    (M3BatchLossResult, SparseHealthFigures?, double) TwoPass(TrainBatch batch, M3BatchHostInputs inputs, StepContext context, int subBatch)
    {
        // Pieces in the order queries then passages; the two ranges are concatenated back into the representations for the loss.
        var queries = batch.QueryPieces(subBatch);
        var passages = batch.PassagePieces(subBatch);
        var pieces = new List<Func<M3Representations>>();
        var queryRange = AddPieces(pieces, queries.Pieces, context.MicroStep, QueryStream);
        var passageRange = AddPieces(pieces, passages.Pieces, context.MicroStep, PassageStream);
        using var queryRows = BatchOrder(queries);
        using var passageRows = BatchOrder(passages);
        SparseHealthFigures? health = null;
        var result = GradCache.Step(pieces, cached =>
        {
            var q = InBatchOrder(M3Representations.Concat(cached.Take(queryRange).ToList()), queryRows);
            var p = InBatchOrder(M3Representations.Concat(cached.Take(passageRange).ToList()), passageRows);
            var batchLoss = Loss.Compute(Group, q, p, inputs, context.MicroStep);
            if (context.Measure) health = Health([q, p]);
            return (batchLoss.Loss * context.Scale, batchLoss);
        }, lossComputed: () => PhaseEnd?.Invoke(StepPhase.Forward), finalBackward: context.FinalBackward);
        int maskedPieces = queries.Pieces.Concat(passages.Pieces).Count(p => p.HasPadding());
        return (result, health, (double)maskedPieces / pieces.Count);
    }

    /// <summary>
    /// For each batch row, its place among the sorted pieces' texts ([N] int64 on the device), which gathers the
    /// concatenated representations back into the batch's order; null when the pieces are in that order already.
    /// </summary>
    Tensor? BatchOrder(SubBatches sub)
    {
        if (sub.Order is not { } order) return null;
        var place = new long[order.Length];
        for (int k = 0; k < order.Length; k++) place[order[k]] = k;
        return tensor(place, device: Group.Device);
    }

    static M3Representations InBatchOrder(M3Representations sorted, Tensor? place) => place is null ? sorted : sorted.Rows(place);

    Range AddPieces(List<Func<M3Representations>> pieces, IReadOnlyList<EncodedBatch> batch, long microStep, int stream)
    {
        int start = pieces.Count;
        for (int i = 0; i < batch.Count; i++)
        {
            var piece = batch[i];
            long dropoutSeed = DropoutSeed(microStep, stream, i);
            // Uploaded at the first encoding and kept for the second, so the ids go to the device once.
            (Tensor Ids, Tensor Mask)? uploaded = null;
            pieces.Add(() =>
            {
                var (ids, mask) = uploaded ??= piece.ToTensors(Group.Device);
                return Model.Encode(ids, mask, dropoutSeed, piece.HasPadding(), parts);
            });
        }
        return start..pieces.Count;
    }

    /// <summary>Sparse and multi-vector health of every text encoded (one host read per batch of representations).</summary>
    SparseHealthFigures? Health(IEnumerable<M3Representations> reps) =>
        parts == EncodingParts.All ? reps.Select(SparseHealth.Measure).Aggregate(SparseHealthFigures.Empty, (a, b) => a + b) : null;

    /// <summary>The dropout seed of sub-batch <paramref name="index"/> of this rank's queries or passages, the same in both GradCache passes and on resume.</summary>
    public long DropoutSeed(long microStep, int stream, int index) =>
        DropoutReplay.Mix(DropoutReplay.Mix(DropoutReplay.Mix(seed, microStep), Group.Rank * 2 + stream), index);
}
