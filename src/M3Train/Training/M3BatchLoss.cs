using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Training.Losses;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The unified M3 loss of one global batch from the representations of every replica's slice
/// (W replicas, B queries and B·G passages each). Replica r's loss uses its own rows: dense scores against
/// the passages of all replicas (cross-device negatives, gathered with their autograd graph), sparse and
/// multi-vector scores against its own passages (M3-SPEC section 4). The batch loss is the mean over replicas.
/// </summary>
public sealed class M3BatchLoss(LossConfig config)
{
    readonly M3UnifiedLoss _loss = new(config);

    public LossConfig Config { get; } = config;

    public IReadOnlyList<M3Head> Heads => _loss.Heads;

    /// <summary>Scores and loss. <paramref name="queries"/>[r]/<paramref name="passages"/>[r] are replica r's; parts are means over replicas.</summary>
    public IReadOnlyDictionary<string, Tensor> Compute(
        IReadOnlyList<M3Representations> queries, IReadOnlyList<M3Representations> passages,
        IReadOnlyList<TrainBatch> batches, long microStep)
    {
        int world = queries.Count;
        var first = batches[0];
        int g = first.GroupSize;
        bool inBatch = !first.NoInBatchNegatives;
        bool crossDevice = world > 1 && inBatch && Heads.Contains(M3Head.Dense);
        var target = queries[0].Dense.device;

        // Host-side inputs: teacher scores and the false-negative mask, global (all replicas' rows) or local.
        var allBatches = crossDevice ? batches : null;
        var results = new List<M3LossResult>(world);
        var health = new Dictionary<string, List<Tensor>>();
        for (int r = 0; r < world; r++)
        {
            var q = queries[r];
            var p = passages[r];
            var device = q.Dense.device;
            var scope = crossDevice ? allBatches! : [batches[r]];
            CrossDeviceDenseScores? cross = null;
            Tensor? dense = null, sparse = null, colbert = null;
            if (Heads.Contains(M3Head.Dense))
            {
                if (crossDevice)
                    cross = CrossDeviceDenseScores.FromGathered(
                        CrossDeviceGather.Gather(queries.Select(x => x.Dense).ToList(), device),
                        CrossDeviceGather.Gather(passages.Select(x => x.Dense).ToList(), device), r, world);
                else
                    dense = Local(M3Scores.Dense(q, p), g, inBatch);
            }
            if (Heads.Contains(M3Head.Sparse)) sparse = Local(M3Scores.Sparse(q, p), g, inBatch);
            if (Heads.Contains(M3Head.Colbert)) colbert = Local(M3Scores.Colbert(q, p), g, inBatch);

            var input = new M3LossInput
            {
                GroupSize = g,
                InBatchNegatives = inBatch,
                Dense = dense,
                Sparse = sparse,
                Colbert = colbert,
                DenseCrossDevice = cross,
                TeacherScores = TeacherScores(scope, g, device),
                ExcludeMask = Config.MaskDuplicateNegatives ? ExcludeMask(scope, g, inBatch, device, out _) : null,
            };
            results.Add(_loss.Compute(input, microStep));
            if (g > 1)
            {
                AddPosNeg(health, "dense", cross?.Local ?? dense, g, inBatch);
                AddPosNeg(health, "sparse", sparse, g, inBatch);
                AddPosNeg(health, "colbert", colbert, g, inBatch);
            }
        }

        var parts = new Dictionary<string, Tensor>
        {
            ["loss"] = Mean(results.Select(x => x.Loss), target),
        };
        Add(parts, "loss_dense", results.Select(x => x.LossDense), target);
        Add(parts, "loss_sparse", results.Select(x => x.LossSparse), target);
        Add(parts, "loss_colbert", results.Select(x => x.LossColbert), target);
        Add(parts, "loss_ensemble", results.Select(x => x.LossEnsemble), target);
        Add(parts, "loss_distill", results.Select(x => x.LossDistill), target);
        foreach (var (name, values) in health) parts[name] = Mean(values, target);
        return parts;
    }

    /// <summary>Columns masked as false negatives in the global batch (for the metrics).</summary>
    public static int MaskedColumns(IReadOnlyList<TrainBatch> batches)
    {
        var first = batches[0];
        using var scope = NewDisposeScope();
        ExcludeMask(batches, first.GroupSize, !first.NoInBatchNegatives, CPU, out int masked);
        return masked;
    }

    /// <summary>Mean raw score of each query's positive and of its own negatives (for the health metrics; no gradient).</summary>
    static void AddPosNeg(Dictionary<string, List<Tensor>> health, string head, Tensor? scores, int g, bool inBatch)
    {
        if (scores is null) return;
        var block = (inBatch ? NoInBatchNegativesLoss.LocalBlock(scores, g) : scores).detach();     // [B, G]
        (health.TryGetValue($"{head}_pos", out var pos) ? pos : health[$"{head}_pos"] = []).Add(block[.., 0].mean());
        (health.TryGetValue($"{head}_neg", out var neg) ? neg : health[$"{head}_neg"] = []).Add(block[.., 1..].mean());
    }

    static Tensor Local(Tensor inBatchScores, int g, bool inBatch) =>
        inBatch ? inBatchScores : NoInBatchNegativesLoss.LocalBlock(inBatchScores, g); // [B, B·G] or [B, G]

    static Tensor? TeacherScores(IReadOnlyList<TrainBatch> batches, int g, Device device)
    {
        if (batches.Any(b => b.TeacherScores is null)) return null;
        var all = batches.SelectMany(b => b.TeacherScores!).ToArray();
        using var host = tensor(all, [all.Length / g, g], ScalarType.Float32);     // [B, G]
        return HostToDevice.Copy(host, device);
    }

    static Tensor? ExcludeMask(IReadOnlyList<TrainBatch> batches, int g, bool inBatch, Device device, out int masked)
    {
        masked = 0;
        if (batches.Any(b => b.PassageHashes is null || b.PositiveHashes is null)) return null;
        var passages = batches.SelectMany(b => b.PassageHashes!).ToArray();
        var positives = batches.SelectMany(b => b.PositiveHashes!).Select(p => (IReadOnlyCollection<ulong>)p).ToArray();
        var mask = FalseNegativeMask.Build(passages, g, inBatch, positives, device);
        masked = mask.MaskedColumns;
        return mask.Mask;
    }

    static Tensor Mean(IEnumerable<Tensor> values, Device device)
    {
        var list = values.Select(v => v.to(device)).ToList();
        return list.Count == 1 ? list[0] : stack(list).mean();
    }

    static void Add(Dictionary<string, Tensor> parts, string name, IEnumerable<Tensor?> values, Device device)
    {
        var list = values.ToList();
        if (list.All(v => v is not null)) parts[name] = Mean(list!, device);
    }
}
