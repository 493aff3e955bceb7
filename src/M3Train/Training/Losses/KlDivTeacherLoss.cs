using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// Teacher distillation over each query's own group (FlagEmbedding <c>kd_loss_type = kl_div</c>):
/// <c>-mean_b Σ_i t[b,i] · log_softmax(S_local)[b,i]</c> over the local [B, G] block, plus the plain
/// InfoNCE over the full scores (the hard labels).
/// </summary>
/// <remarks>
/// <para>Despite the name this is the cross-entropy to the teacher (the KL divergence minus the teacher's
/// constant entropy), written out as the reference writes it; it does not call <c>F.kl_div</c>, whose
/// TorchSharp default <c>log_target = true</c> differs from PyTorch's.</para>
/// <para><b>Takes</b> logits (similarities / τ) [R, R·G] or [R, G], teacher targets [R, G]
/// (<see cref="TeacherTargets.FromScores"/>, in group order: the positive, then the negatives in the order the
/// group was sampled) and an optional bool exclude mask [R, C]; excluded columns leave the local softmax, and their
/// teacher terms are dropped.</para>
/// <para><b>Hard labels</b>: the InfoNCE to the positive is always added, in-batch and without in-batch negatives
/// alike, as the reference does for <c>kl_div</c> in both cases. (With <see cref="KdLossType.M3KdLoss"/> the reference,
/// and <see cref="M3UnifiedLoss"/>, use <see cref="M3KdLoss"/> instead, in both cases.)</para>
/// <para><b>Returns</b> a scalar.</para>
/// <para><b>Reference</b>: FlagEmbedding <c>distill_loss("kl_div", ...)</c> in <c>_compute_in_batch_neg_loss</c> and
/// <c>_compute_no_in_batch_neg_loss</c>; Hinton et al. 2015 (distillation); RocketQAv2 (listwise distillation for
/// retrievers). docs/METHOD.md, "Teacher scores from the data".</para>
/// <para><b>Siblings</b>: <see cref="M3KdLoss"/>, <see cref="SelfDistillationLoss"/> (same form, model's own
/// ensemble as teacher, all columns), <see cref="InfoNceLoss"/>.</para>
/// </remarks>
public static class KlDivTeacherLoss
{
    public static Tensor Compute(Tensor logits, Tensor teacherTargets, int groupSize, Tensor? exclude = null)
    {
        GroupLayout.Check(logits, groupSize, nameof(logits));
        M3KdLoss.CheckTargets(logits, teacherTargets, groupSize);
        var scores = LossMath.Upcast(logits);
        var masked = LossMath.Exclude(scores, exclude);
        var local = GroupLayout.LocalBlock(masked, groupSize);                                 // [R, G]
        var weighted = teacherTargets.to_type(scores.dtype) * local.log_softmax(-1);           // [R, G]
        if (exclude is not null)
            weighted = where(GroupLayout.LocalBlock(exclude, groupSize), zeros_like(weighted), weighted);
        return -weighted.sum(-1).mean() + InfoNceLoss.Compute(scores, groupSize, exclude);
    }
}
