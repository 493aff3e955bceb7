using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// BGE-M3's ensemble ("inter") score: <c>S_inter = w_d·S_dense + w_s·S_lex + w_c·S_mul</c>, by default
/// <c>S_dense + 0.3·S_lex + S_mul</c> (docs/METHOD.md, "Scores"). Its InfoNCE is <c>L_inter</c>, and its softmax is the
/// teacher of <see cref="SelfDistillationLoss"/>.
/// </summary>
/// <remarks>
/// <para><b>Takes</b> the score matrices of the enabled heads (null for a disabled head), all of one shape:
/// [B, B·G] in-batch or [B, G] without in-batch negatives (then each is the head's local block). With
/// cross-device negatives the dense term is the rank's local block (<see cref="CrossDeviceDenseScores.Local"/>),
/// not the gathered matrix. Logits or raw similarities both work: the sum is linear.</para>
/// <para><b>Reference</b>: BGE-M3 (Chen et al. 2024), eq. for <c>s_inter</c>; FlagEmbedding
/// <c>ensemble_loss_func</c>. At inference the same weights appear as <c>weights_for_different_modes</c>.</para>
/// <para><b>Siblings</b>: <see cref="SelfDistillationLoss"/>, <see cref="M3UnifiedLoss"/>.</para>
/// </remarks>
public static class EnsembleScore
{
    public static Tensor Compute(Tensor? dense, Tensor? sparse, Tensor? colbert,
        double denseWeight = 1.0, double sparseWeight = 0.3, double colbertWeight = 1.0)
    {
        Tensor? sum = null;
        foreach (var (scores, weight) in new[] { (dense, denseWeight), (sparse, sparseWeight), (colbert, colbertWeight) })
        {
            if (scores is null) continue;
            if (sum is not null && !scores.shape.SequenceEqual(sum.shape))
                throw new ArgumentException(
                    $"ensemble terms differ in shape: [{string.Join(", ", sum.shape)}] and [{string.Join(", ", scores.shape)}]");
            var term = weight == 1.0 ? scores : scores * weight;
            sum = sum is null ? term : sum + term;
        }
        return sum ?? throw new ArgumentException("the ensemble needs at least one head's scores");
    }

    /// <summary>The ensemble of the heads a <see cref="LossConfig"/> enables, with its weights.</summary>
    public static Tensor Compute(Tensor? dense, Tensor? sparse, Tensor? colbert, LossConfig config) =>
        Compute(dense, sparse, colbert, config.EnsembleDenseWeight, config.EnsembleSparseWeight, config.EnsembleColbertWeight);
}
