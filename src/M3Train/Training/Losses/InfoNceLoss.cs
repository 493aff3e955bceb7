using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace M3Train.Training.Losses;

/// <summary>
/// InfoNCE with in-batch negatives: the cross-entropy of each query's score row against its positive
/// column, every other passage of the batch acting as a negative.
/// </summary>
/// <remarks>
/// <para><b>Takes</b> logits, i.e. similarities already divided by the temperature τ (sentence-transformers'
/// <c>scale = 1/τ</c>; BGE-M3 uses τ = 0.02). Temperature is applied once, where the scores are
/// made (<see cref="M3UnifiedLoss"/> divides by <see cref="LossConfig.Temperature"/>); the loss classes take
/// it as already applied so that they compose (the ensemble is a weighted sum of logits).</para>
/// <para><b>Shapes</b>: S [R, C] with C = R·G (B queries, G passages each, ordered
/// <c>[q0 pos, q0 neg1..negG-1, q1 pos, ...]</c>; target column of row r is r·G), or with explicit targets
/// [R] int64. With cross-device negatives R = W·B and C = W·B·G (see <see cref="CrossDeviceDenseScores"/>).
/// An optional bool mask [R, C] excludes columns (false negatives, <see cref="FalseNegativeMask"/>);
/// it must never exclude a row's target.</para>
/// <para><b>Returns</b> the mean over rows, a scalar.</para>
/// <para><b>Reference</b>: van den Oord et al. 2018 (CPC); Karpukhin et al. 2020 (DPR, in-batch negatives);
/// BGE-M3 (Chen et al. 2024) eq. for <c>L_dense</c>, <c>L_lex</c>, <c>L_mul</c>, <c>L_inter</c>;
/// FlagEmbedding <c>_compute_in_batch_neg_loss</c>.</para>
/// <para><b>Siblings</b>: <see cref="NoInBatchNegativesLoss"/> (own group only), <see cref="M3KdLoss"/> and
/// <see cref="KlDivTeacherLoss"/> (teacher scores from data), <see cref="SelfDistillationLoss"/>;
/// sentence-transformers' <c>MultipleNegativesRankingLoss</c> is the same loss with G = 1 and scale 20.</para>
/// </remarks>
public static class InfoNceLoss
{
    /// <summary>Cross-entropy of <paramref name="logits"/> [R, C] against <paramref name="targets"/> [R].</summary>
    public static Tensor Compute(Tensor logits, Tensor targets, Tensor? exclude = null)
    {
        if (logits.dim() != 2 || targets.dim() != 1 || targets.shape[0] != logits.shape[0])
            throw new ArgumentException(
                $"expected logits [R, C] and targets [R], got [{string.Join(", ", logits.shape)}] and [{string.Join(", ", targets.shape)}]");
        return F.cross_entropy(LossMath.Exclude(LossMath.Upcast(logits), exclude), targets);
    }

    /// <summary>
    /// Cross-entropy with the group layout's positives as targets: column r·G for logits [R, R·G]
    /// (or column 0 for the local layout [R, G], which is <see cref="NoInBatchNegativesLoss"/>).
    /// </summary>
    public static Tensor Compute(Tensor logits, int groupSize, Tensor? exclude = null)
    {
        GroupLayout.Check(logits, groupSize, nameof(logits));
        return Compute(logits, GroupLayout.PositiveColumns(logits, groupSize), exclude);
    }
}
