using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Training.Losses;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The unified M3 loss of this rank's slice of a global batch (W ranks, B queries and B·G passages each). The rank's
/// loss uses its own rows: dense scores against the passages of every rank (cross-device negatives: the dense embeddings
/// are all-gathered, with the gradient <c>loss.cross_device_gradient</c> chooses), sparse and multi-vector scores against
/// its own passages. Its value is this rank's share: the mean over the ranks is the global batch's loss, and the mean of
/// the ranks' gradients its gradient.
/// Teacher scores (with <c>loss.knowledge_distillation</c>) and the false-negative mask are built on the host once per
/// micro-batch (<see cref="Prepare"/>): over
/// the global batch when the dense loss sees every rank's rows (the ranks exchange their <see cref="HostRows"/> once),
/// else over the rank's own; and uploaded once.
/// </summary>
/// <param name="config">Temperature, weights, distillation, masking and cross-device settings.</param>
/// <param name="heads">The heads the run trains (<c>model.heads</c>).</param>
public sealed class M3BatchLoss(LossConfig config, IReadOnlyList<M3Head> heads)
{
    readonly M3UnifiedLoss _loss = new(config, heads);

    public LossConfig Config { get; } = config;

    /// <summary>The heads the loss trains, in the order dense, sparse, colbert.</summary>
    public IReadOnlyList<M3Head> Heads => _loss.Heads;

    /// <summary>
    /// The host-side inputs of <paramref name="batch"/>'s loss, on the rank's device. With cross-device negatives every
    /// rank must call it for the same micro-batch (it exchanges host rows): before encoding, so the exchange's host
    /// reads do not wait for the forward.
    /// </summary>
    public M3BatchHostInputs Prepare(DataParallelGroup group, TrainBatch batch)
    {
        int g = batch.GroupSize;
        bool inBatch = !batch.NoInBatchNegatives;
        bool crossDevice = group.WorldSize > 1 && inBatch && Heads.Contains(M3Head.Dense);
        // Teacher scores count only when the run distils from them (loss.knowledge_distillation): else they need not travel.
        var mine = Config.KnowledgeDistillation ? HostRows.Of(batch) : HostRows.Of(batch) with { TeacherScores = null };
        IReadOnlyList<HostRows> rows = crossDevice && (mine.TeacherScores is not null || mine.PassageHashes is not null)
            ? group.AllGatherBytes(mine.ToBytes()).Select(HostRows.FromBytes).ToList()
            : [mine];
        Tensor? scores = null;
        if (rows.All(r => r.TeacherScores is not null))
        {
            var all = rows.SelectMany(r => r.TeacherScores!).ToArray();
            using var host = tensor(all, [all.Length / g, g], ScalarType.Float32);      // [B or W·B, G]
            scores = HostToDevice.Copy(host, group.Device);
        }
        FalseNegativeMask? mask = null;
        int masked = 0;
        if (rows.All(r => r.PassageHashes is not null && r.PositiveHashes is not null))
        {
            var global = FalseNegativeMask.Build(rows.SelectMany(r => r.PassageHashes!).ToArray(), g, inBatch,
                rows.SelectMany(r => r.PositiveHashes!).Select(p => (IReadOnlyCollection<ulong>)p).ToArray());
            // The figure counts this rank's rows only: the trainer averages it over the ranks.
            if (rows.Count == 1) masked = global.MaskedColumns;
            else
            {
                using var own = global.Mask[TensorIndex.Slice(group.Rank * batch.BatchSize, (group.Rank + 1) * batch.BatchSize)];   // [B, W·B·G]
                using var count = own.sum();
                masked = (int)count.item<long>();
            }
            // The figure is logged either way; the mask goes to the device only when the loss uses it.
            if (Config.MaskDuplicateNegatives) mask = new FalseNegativeMask(HostToDevice.Copy(global.Mask, group.Device), global.MaskedColumns);
            global.Mask.Dispose();
        }
        return new M3BatchHostInputs(g, inBatch, crossDevice, scores, mask, masked);
    }

    /// <summary>Scores and this rank's loss; <paramref name="queries"/>/<paramref name="passages"/> are this rank's, <paramref name="inputs"/> from <see cref="Prepare"/>.</summary>
    public M3BatchLossResult Compute(DataParallelGroup group, M3Representations queries, M3Representations passages,
        M3BatchHostInputs inputs, long microStep)
    {
        int g = inputs.GroupSize;
        bool inBatch = inputs.InBatchNegatives;
        using var scope = NewDisposeScope();
        CrossDeviceDenseScores? cross = null;
        Tensor? dense = null, sparse = null, colbert = null;
        if (Heads.Contains(M3Head.Dense))
        {
            if (inputs.CrossDevice)
            {
                bool exact = Config.CrossDeviceGradient == CrossDeviceGradient.Exact;
                cross = CrossDeviceDenseScores.FromGathered(group.Gather(queries.Dense, exact), group.Gather(passages.Dense, exact),
                    group.Rank, group.WorldSize);
            }
            else
                dense = Local(M3Scores.Dense(queries, passages), g, inBatch);
        }
        if (Heads.Contains(M3Head.Sparse)) sparse = Local(M3Scores.Sparse(queries, passages), g, inBatch);
        if (Heads.Contains(M3Head.Colbert)) colbert = Local(M3Scores.Colbert(queries, passages), g, inBatch);

        var result = _loss.Compute(new M3LossInput
        {
            GroupSize = g,
            InBatchNegatives = inBatch,
            Dense = dense,
            Sparse = sparse,
            Colbert = colbert,
            DenseCrossDevice = cross,
            TeacherScores = inputs.TeacherScores,
            ExcludeMask = inputs.Mask?.Mask,
        }, microStep);

        var parts = new Dictionary<string, Tensor>();
        Add(parts, "loss_dense", result.LossDense);
        Add(parts, "loss_sparse", result.LossSparse);
        Add(parts, "loss_colbert", result.LossColbert);
        Add(parts, "loss_ensemble", result.LossEnsemble);
        Add(parts, "loss_distill", result.LossDistill);
        if (g > 1)
        {
            AddPosNeg(parts, "dense", cross?.Local ?? dense, g, inBatch);
            AddPosNeg(parts, "sparse", sparse, g, inBatch);
            AddPosNeg(parts, "colbert", colbert, g, inBatch);
        }
        return new M3BatchLossResult(result.Loss.MoveToOuterDisposeScope(), parts, inputs.MaskedColumns);
    }

    /// <summary>Mean raw score of each query's positive and of its own negatives (for the health metrics; no gradient).</summary>
    static void AddPosNeg(Dictionary<string, Tensor> parts, string head, Tensor? scores, int g, bool inBatch)
    {
        if (scores is null) return;
        var block = (inBatch ? NoInBatchNegativesLoss.LocalBlock(scores, g) : scores).detach();     // [B, G]
        parts[$"{head}_pos"] = block[.., 0].mean().MoveToOuterDisposeScope();
        parts[$"{head}_neg"] = block[.., 1..].mean().MoveToOuterDisposeScope();
    }

    static void Add(Dictionary<string, Tensor> parts, string name, Tensor? value)
    {
        if (value is not null) parts[name] = value.MoveToOuterDisposeScope();
    }

    static Tensor Local(Tensor inBatchScores, int g, bool inBatch) =>
        inBatch ? inBatchScores : NoInBatchNegativesLoss.LocalBlock(inBatchScores, g); // [B, B·G] or [B, G]
}
