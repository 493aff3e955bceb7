using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// BGE-M3's unified fine-tuning loss with self-knowledge distillation (docs/METHOD.md, "Unified loss"): per-head
/// losses, the ensemble loss and self-distillation, combined with the reference code's constants.
/// </summary>
/// <remarks>
/// <para><b>Computes</b>, on logits S_x = similarity_x / τ of the enabled heads x:
/// <list type="bullet">
/// <item>L_x = head loss of S_x: <see cref="InfoNceLoss"/> without teacher scores; with them
/// <see cref="M3KdLoss"/> or <see cref="KlDivTeacherLoss"/> by <see cref="LossConfig.KdLossType"/>; without
/// in-batch negatives <see cref="NoInBatchNegativesLoss"/>, or with teacher scores the same teacher loss on the local
/// [B, G] block (m3_kd_loss with target column i).</item>
/// <item>S_inter = <see cref="EnsembleScore"/> of the enabled heads' local logits; L_inter = head loss of S_inter.</item>
/// <item>L = (w_d·L_dense + w_e·L_inter + w_s·L_lex + w_c·L_mul) / n, n the number of terms present
/// (4 with all heads: the reference's <c>(L_dense + L_inter + 0.1·L_lex + L_mul)/4</c>).</item>
/// <item>L' = (w_d·L'_dense + w_s·L'_lex + w_c·L'_mul) / h over the h enabled heads (<see cref="SelfDistillationLoss"/>),
/// when <see cref="LossConfig.UseSelfDistill"/> and micro-step &gt; <see cref="LossConfig.SelfDistillStartStep"/>;
/// then L_final = (L + L') / 2.</item>
/// </list>
/// With one head there is no ensemble and no self-distillation: L = L_x. With
/// <see cref="LossConfig.UnifiedFinetuning"/> off only the dense head trains (the reference's behaviour).</para>
/// <para><b>Cross-device negatives</b> (dense only): the dense loss runs over
/// <see cref="CrossDeviceDenseScores.Global"/> with targets (global row)·G; the ensemble and
/// self-distillation use its <see cref="CrossDeviceDenseScores.Local"/> block.</para>
/// <para><b>False negatives</b>: <see cref="M3LossInput.ExcludeMask"/> applies to every head loss, the ensemble
/// loss and self-distillation.</para>
/// <para><b>Precision</b>: fp16/bf16 scores are upcast to fp32; fp64 stays fp64 (for gradient checks).</para>
/// <para><b>Reference</b>: FlagEmbedding <c>EncoderOnlyEmbedderM3Model.forward</c>; BGE-M3 (Chen et al. 2024).</para>
/// </remarks>
public sealed class M3UnifiedLoss
{
    private readonly LossConfig _config;
    private readonly IReadOnlyList<M3Head> _heads;

    /// <param name="config">Temperature, weights and the distillation settings.</param>
    /// <param name="heads">The heads the run trains (<c>model.heads</c>), which also form the ensemble.</param>
    public M3UnifiedLoss(LossConfig config, IReadOnlyList<M3Head> heads)
    {
        _config = config;
        _heads = config.UnifiedFinetuning ? heads.Distinct().Order().ToArray() : [M3Head.Dense];
        if (_heads.Count == 0)
            throw new M3TrainException("model.heads: at least one of dense, sparse, colbert must be enabled");
    }

    /// <summary>The heads this loss trains, in the order dense, sparse, colbert (dense alone without <see cref="LossConfig.UnifiedFinetuning"/>).</summary>
    public IReadOnlyList<M3Head> Heads => _heads;

    /// <summary>Whether self-distillation is part of the loss at this micro-step (0-based count of loss evaluations).</summary>
    public bool SelfDistillActive(long microStep) =>
        _config.UseSelfDistill && _heads.Count >= 2 && SelfDistillationLoss.IsActive(microStep, _config.SelfDistillStartStep);

    public M3LossResult Compute(M3LossInput input, long microStep)
    {
        using var scope = NewDisposeScope();
        int g = input.GroupSize;
        var cross = input.DenseCrossDevice;
        if (cross is not null && (!input.InBatchNegatives || input.Dense is not null || cross.GroupSize != g))
            throw new ArgumentException("cross-device dense scores need in-batch negatives, the same group size, and no separate Dense scores");

        var local = new Dictionary<M3Head, Tensor>();
        foreach (var head in _heads)
        {
            var similarities = head switch
            {
                M3Head.Dense => cross?.Local ?? input.Dense,
                M3Head.Sparse => input.Sparse,
                _ => input.Colbert,
            } ?? throw new ArgumentException($"the {head.ToString().ToLowerInvariant()} head is enabled but its scores are missing");
            local[head] = Logits(similarities);
        }
        var shape = local.Values.First().shape;
        long b = shape[0];
        long expectedColumns = input.InBatchNegatives ? b * g : g;
        if (shape.Length != 2 || shape[1] != expectedColumns || local.Values.Any(s => !s.shape.SequenceEqual(shape)))
            throw new ArgumentException(
                $"every head's scores must be [{b}, {expectedColumns}] ({(input.InBatchNegatives ? "B, B·G" : "B, G")}), got " +
                string.Join(", ", local.Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.shape)}]")));

        // Teacher scores and the mask come on the scores' device (the batch loss uploads each once per device).
        Tensor? globalTeacher = input.TeacherScores is null ? null : TeacherTargets.FromScores(input.TeacherScores, g);
        Tensor? globalExclude = input.ExcludeMask;
        Tensor? teacher = globalTeacher, exclude = globalExclude;
        if (cross is not null)
        {
            teacher = globalTeacher?[TensorIndex.Slice(cross.Rank * b, (cross.Rank + 1) * b)];
            exclude = globalExclude is null ? null : FalseNegativeMask.LocalBlock(globalExclude, cross.Rank, (int)b, g);
        }

        var parts = new Dictionary<M3Head, Tensor>();
        foreach (var head in _heads)
        {
            parts[head] = head == M3Head.Dense && cross is not null
                ? HeadLoss(Logits(cross.Global), globalTeacher, globalExclude, g)
                : HeadLoss(local[head], teacher, exclude, g);
        }

        var weighted = parts.Select(kv => kv.Value * Weight(kv.Key)).Aggregate((x, y) => x + y);
        int terms = parts.Count;
        Tensor? ensembleLoss = null, distillLoss = null;
        Tensor? ensemble = null;
        if (_heads.Count >= 2)
        {
            ensemble = EnsembleScore.Compute(local.GetValueOrDefault(M3Head.Dense), local.GetValueOrDefault(M3Head.Sparse),
                local.GetValueOrDefault(M3Head.Colbert), _config);
            ensembleLoss = HeadLoss(ensemble, teacher, exclude, g);
            weighted = weighted + ensembleLoss * _config.EnsembleLossWeight;
            terms++;
        }
        var loss = weighted / terms;

        if (ensemble is not null && SelfDistillActive(microStep))
        {
            distillLoss = _heads
                .Select(h => SelfDistillationLoss.Compute(local[h], ensemble, exclude) * Weight(h))
                .Aggregate((x, y) => x + y) / _heads.Count;
            loss = (loss + distillLoss) / 2;
        }

        return new M3LossResult(
            loss.MoveToOuterDisposeScope(),
            Detached(parts.GetValueOrDefault(M3Head.Dense)),
            Detached(parts.GetValueOrDefault(M3Head.Sparse)),
            Detached(parts.GetValueOrDefault(M3Head.Colbert)),
            Detached(ensembleLoss),
            Detached(distillLoss));
    }

    private Tensor Logits(Tensor similarities) => LossMath.Upcast(similarities) / _config.Temperature;

    private double Weight(M3Head head) => head switch
    {
        M3Head.Dense => _config.DenseLossWeight,
        M3Head.Sparse => _config.SparseLossWeight,
        _ => _config.ColbertLossWeight,
    };

    private Tensor HeadLoss(Tensor logits, Tensor? teacher, Tensor? exclude, int g)
    {
        // Without in-batch negatives the logits are the local [B, G] block, which both teacher losses read with
        // target column i; with them, [B, B·G] with target column b·G + i.
        if (teacher is null)
            return InfoNceLoss.Compute(logits, g, exclude);
        return _config.KdLossType == KdLossType.M3KdLoss
            ? M3KdLoss.Compute(logits, teacher, g, exclude)
            : KlDivTeacherLoss.Compute(logits, teacher, g, exclude);
    }

    private static Tensor? Detached(Tensor? part) => part?.detach().MoveToOuterDisposeScope();
}
