using System.ComponentModel.DataAnnotations;

namespace M3Train.Training.Losses;

/// <summary>
/// The <c>loss</c> section of a fine-tuning config (docs/METHOD.md, "Unified loss"), with the reference code's
/// constants as named weights. Defaults reproduce FlagEmbedding's unified fine-tuning of BGE-M3.
/// </summary>
/// <remarks>
/// With every head enabled the combination is the reference's
/// <c>L = (L_dense + L_inter + 0.1·L_lex + L_mul) / 4</c> and
/// <c>L_final = (L + (L'_dense + 0.1·L'_lex + L'_mul) / 3) / 2</c>; see <see cref="M3UnifiedLoss"/> for
/// how a subset of heads changes the divisors.
/// </remarks>
public sealed record LossConfig
{
    /// <summary>τ: every similarity is divided by it before a softmax. Default 0.02.</summary>
    [Range(1e-6, 1e6)]
    public double Temperature { get; init; } = 0.02;

    /// <summary>
    /// Train the sparse and multi-vector heads with the ensemble and self-distillation. Default true.
    /// When false the loss is the dense InfoNCE alone (FlagEmbedding's behaviour), whatever heads the run names.
    /// </summary>
    public bool UnifiedFinetuning { get; init; } = true;

    /// <summary>Add self-knowledge distillation from the ensemble score (needs two or more heads). Default true.</summary>
    public bool UseSelfDistill { get; init; } = true;

    /// <summary>
    /// Self-distillation applies when the micro-step counter (0 for the first loss evaluation of a run) is
    /// <b>greater</b> than this value, as in the reference. Default 0, the reference recipe's value, so distillation
    /// starts at the second micro-step; FlagEmbedding's argument default is -1 (from the first micro-step), which is
    /// also what a config can set.
    /// </summary>
    [Range(-1, int.MaxValue)]
    public int SelfDistillStartStep { get; init; } = 0;

    /// <summary>
    /// Distil from the teacher scores in the data (<c>pos_scores</c>, <c>neg_scores</c>): the datasets whose rows all
    /// carry them train on <see cref="KdLossType"/> instead of the plain cross-entropy. Default false, as FlagEmbedding's
    /// <c>knowledge_distillation</c>: scores in a file are not used unless this is on (the log says which datasets
    /// distil, and warns when some carry scores while it is off).
    /// </summary>
    public bool KnowledgeDistillation { get; init; }

    /// <summary>How data teacher scores enter the per-head losses when <see cref="KnowledgeDistillation"/> is on: m3_kd_loss (default) or kl_div.</summary>
    public KdLossType KdLossType { get; init; } = KdLossType.M3KdLoss;

    /// <summary>
    /// Exclude in-batch columns whose passage text equals the row's positive (issue 11). Default true.
    /// Read by the batch loss, which builds the mask with <see cref="FalseNegativeMask"/> and passes it in
    /// <see cref="M3LossInput.ExcludeMask"/>.
    /// </summary>
    public bool MaskDuplicateNegatives { get; init; } = true;

    /// <summary>
    /// The dense embeddings' gradient with cross-device negatives (several ranks): <c>exact</c> (default), the gradient of
    /// the global batch's loss, so W ranks with B queries each train as one with W·B; or <c>local</c>, FlagEmbedding's
    /// own-slot gradient, for runs that must reproduce it. See <see cref="Losses.CrossDeviceGradient"/>.
    /// </summary>
    public CrossDeviceGradient CrossDeviceGradient { get; init; } = CrossDeviceGradient.Exact;

    /// <summary>Weight of <c>L_dense</c> in L and of <c>L'_dense</c> in L'. Default 1.0.</summary>
    [Range(0.0, 1e6)]
    public double DenseLossWeight { get; init; } = 1.0;

    /// <summary>Weight of <c>L_lex</c> in L and of <c>L'_lex</c> in L'. Default 0.1.</summary>
    [Range(0.0, 1e6)]
    public double SparseLossWeight { get; init; } = 0.1;

    /// <summary>Weight of <c>L_mul</c> in L and of <c>L'_mul</c> in L'. Default 1.0.</summary>
    [Range(0.0, 1e6)]
    public double ColbertLossWeight { get; init; } = 1.0;

    /// <summary>Weight of the ensemble loss <c>L_inter</c> in L. Default 1.0.</summary>
    [Range(0.0, 1e6)]
    public double EnsembleLossWeight { get; init; } = 1.0;

    /// <summary>Weight of the dense score in <c>S_inter</c>. Default 1.0.</summary>
    [Range(0.0, 1e6)]
    public double EnsembleDenseWeight { get; init; } = 1.0;

    /// <summary>Weight of the sparse score in <c>S_inter</c>. Default 0.3.</summary>
    [Range(0.0, 1e6)]
    public double EnsembleSparseWeight { get; init; } = 0.3;

    /// <summary>Weight of the multi-vector score in <c>S_inter</c>. Default 1.0.</summary>
    [Range(0.0, 1e6)]
    public double EnsembleColbertWeight { get; init; } = 1.0;
}
