using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Training.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The unified M3 loss of one global batch from the representations of every replica's slice
/// (W replicas, B queries and B·G passages each). Replica r's loss uses its own rows: dense scores against
/// the passages of all replicas (cross-device negatives, gathered through the replica group with their autograd
/// graph), sparse and multi-vector scores against its own passages. The batch loss is the mean over replicas.
/// Teacher scores and the false-negative mask are built on the host once per batch (over the global batch when the
/// dense loss sees every replica's rows, else per replica) and uploaded once to each device that uses them.
/// </summary>
/// <param name="config">Temperature, weights, distillation and masking settings.</param>
/// <param name="heads">The heads the run trains (<c>model.heads</c>).</param>
public sealed class M3BatchLoss(LossConfig config, IReadOnlyList<M3Head> heads)
{
    readonly M3UnifiedLoss _loss = new(config, heads);

    public LossConfig Config { get; } = config;

    /// <summary>The heads the loss trains, in the order dense, sparse, colbert.</summary>
    public IReadOnlyList<M3Head> Heads => _loss.Heads;

    /// <summary>Scores and loss. <paramref name="queries"/>[r]/<paramref name="passages"/>[r] are replica r's; parts are means over replicas.</summary>
    public M3BatchLossResult Compute(IReplicaGroup<nn.Module> replicas,
        IReadOnlyList<M3Representations> queries, IReadOnlyList<M3Representations> passages,
        IReadOnlyList<TrainBatch> batches, long microStep)
    {
        int world = queries.Count;
        var first = batches[0];
        int g = first.GroupSize;
        bool inBatch = !first.NoInBatchNegatives;
        bool crossDevice = world > 1 && inBatch && Heads.Contains(M3Head.Dense);
        var target = queries[0].Dense.device;

        using var scope = NewDisposeScope();
        bool distil = Config.KnowledgeDistillation;
        var hostInputs = crossDevice
            ? [HostInputs.Of(batches, g, inBatch, distil)]
            : batches.Select(b => HostInputs.Of([b], g, inBatch, distil)).ToList();
        var results = new List<M3LossResult>(world);
        var health = new Dictionary<string, List<Tensor>>();
        for (int r = 0; r < world; r++)
        {
            var q = queries[r];
            var p = passages[r];
            var device = q.Dense.device;
            var host = hostInputs[crossDevice ? 0 : r];
            CrossDeviceDenseScores? cross = null;
            Tensor? dense = null, sparse = null, colbert = null;
            if (Heads.Contains(M3Head.Dense))
            {
                if (crossDevice)
                    cross = CrossDeviceDenseScores.FromGathered(
                        replicas.Gather(queries.Select(x => x.Dense).ToList(), device),
                        replicas.Gather(passages.Select(x => x.Dense).ToList(), device), replicas.Rank(r), world);
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
                TeacherScores = host.TeacherScores is { } scores ? HostToDevice.Copy(scores, device) : null,
                ExcludeMask = Config.MaskDuplicateNegatives && host.Mask is { } mask ? HostToDevice.Copy(mask.Mask, device) : null,
            };
            results.Add(_loss.Compute(input, microStep));
            if (g > 1)
            {
                AddPosNeg(health, "dense", cross?.Local ?? dense, g, inBatch);
                AddPosNeg(health, "sparse", sparse, g, inBatch);
                AddPosNeg(health, "colbert", colbert, g, inBatch);
            }
        }

        var parts = new Dictionary<string, Tensor>();
        Add(parts, "loss_dense", results.Select(x => x.LossDense), target);
        Add(parts, "loss_sparse", results.Select(x => x.LossSparse), target);
        Add(parts, "loss_colbert", results.Select(x => x.LossColbert), target);
        Add(parts, "loss_ensemble", results.Select(x => x.LossEnsemble), target);
        Add(parts, "loss_distill", results.Select(x => x.LossDistill), target);
        foreach (var (name, values) in health) parts[name] = Mean(values, target).MoveToOuterDisposeScope();
        return new M3BatchLossResult(Mean(results.Select(x => x.Loss), target).MoveToOuterDisposeScope(), parts,
            hostInputs.Sum(h => h.Mask?.MaskedColumns ?? 0));
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

    static Tensor Mean(IEnumerable<Tensor> values, Device device)
    {
        var list = values.Select(v => v.to(device)).ToList();
        return list.Count == 1 ? list[0] : stack(list).mean();
    }

    static void Add(Dictionary<string, Tensor> parts, string name, IEnumerable<Tensor?> values, Device device)
    {
        var list = values.ToList();
        if (list.All(v => v is not null)) parts[name] = Mean(list!, device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The host-side inputs of the rows one loss sees: teacher scores [B, G] and the false-negative mask with its count
    /// (null when knowledge distillation is off or the data has no teacher scores, or when there are no hashes to compare).
    /// </summary>
    sealed record HostInputs(Tensor? TeacherScores, FalseNegativeMask? Mask)
    {
        public static HostInputs Of(IReadOnlyList<TrainBatch> batches, int g, bool inBatch, bool distil)
        {
            Tensor? scores = null;
            if (distil && batches.All(b => b.TeacherScores is not null))
            {
                var all = batches.SelectMany(b => b.TeacherScores!).ToArray();
                scores = tensor(all, [all.Length / g, g], ScalarType.Float32);     // [B, G]
            }
            FalseNegativeMask? mask = null;
            if (batches.All(b => b.PassageHashes is not null && b.PositiveHashes is not null))
                mask = FalseNegativeMask.Build(batches.SelectMany(b => b.PassageHashes!).ToArray(), g, inBatch,
                    batches.SelectMany(b => b.PositiveHashes!).Select(p => (IReadOnlyCollection<ulong>)p).ToArray());
            return new HostInputs(scores, mask);
        }
    }
}
