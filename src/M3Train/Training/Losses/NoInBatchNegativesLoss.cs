using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// InfoNCE without in-batch negatives: each query is scored only against its own G passages and the
/// positive is column 0. For data whose folder name ends in <c>no_in_batch_neg</c> (classification and
/// clustering sets, where another query's positive may well be relevant).
/// </summary>
/// <remarks>
/// <para><b>Takes</b> logits (similarities divided by τ), S [B, G], row b = query b against
/// <c>[pos_b, neg_b1 .. neg_b(G-1)]</c>; optionally a bool exclude mask [B, G] that never marks column 0.
/// <see cref="LocalBlock"/> cuts S [B, G] out of an in-batch matrix [B, B·G].</para>
/// <para><b>Ensemble semantics</b> (docs/METHOD.md, "No in-batch negatives"): in this mode every head <b>and the ensemble</b> use the
/// local block, <c>S_inter = local dense + 0.3·local lex + local mul</c> [B, G], and self-distillation uses the
/// softmax of that local ensemble. FlagEmbedding instead scores each query against the positives only,
/// which leaves a one-column ensemble whose loss is always 0; <see cref="M3UnifiedLoss"/> does the intended
/// thing.</para>
/// <para><b>Returns</b> the mean over queries, a scalar.</para>
/// <para><b>Reference</b>: FlagEmbedding <c>_compute_no_in_batch_neg_loss</c>; BGE-M3 paper, fine-tuning data.</para>
/// <para><b>Siblings</b>: <see cref="InfoNceLoss"/> (in-batch), <see cref="KlDivTeacherLoss"/> (the teacher
/// variant used in this mode).</para>
/// </remarks>
public static class NoInBatchNegativesLoss
{
    /// <summary>Cross-entropy of the local scores [B, G] against column 0.</summary>
    public static Tensor Compute(Tensor localLogits, Tensor? exclude = null)
    {
        if (localLogits.dim() != 2)
            throw new ArgumentException($"expected local logits [B, G], got [{string.Join(", ", localLogits.shape)}]");
        return InfoNceLoss.Compute(localLogits, (int)localLogits.shape[1], exclude);
    }

    /// <summary>Each query's own group out of in-batch scores: [B, B·G] → [B, G], entry (b, i) = S[b, b·G + i].</summary>
    public static Tensor LocalBlock(Tensor inBatchScores, int groupSize)
    {
        GroupLayout.Check(inBatchScores, groupSize, nameof(inBatchScores));
        return GroupLayout.LocalBlock(inBatchScores, groupSize);
    }
}
