using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// Self-knowledge distillation (BGE-M3): each head learns to match the model's own ensemble,
/// <c>L'_x = -mean_b Σ_j T_bj · log_softmax(S_x)_bj</c> with <c>T = softmax(S_inter.detach())</c>
/// over the same columns (docs/METHOD.md, "Self-distillation").
/// </summary>
/// <remarks>
/// <para><b>Takes</b> the head's logits S_x and the ensemble logits S_inter (<see cref="EnsembleScore"/>), both
/// [B, B·G] in-batch or [B, G] without in-batch negatives, and an optional bool exclude mask of that shape;
/// excluded columns leave both softmaxes. The teacher is detached here, so no gradient reaches it.</para>
/// <para><b>Start step</b>: the reference applies it only when its micro-step counter (0 on the first forward)
/// is greater than <c>self_distill_start_step</c>; <see cref="IsActive"/> states that rule and
/// <see cref="LossConfig.SelfDistillStartStep"/> gives the default.</para>
/// <para><b>Returns</b> a scalar. The combination <c>(L'_dense + 0.1·L'_lex + L'_mul)/3</c> is made by
/// <see cref="M3UnifiedLoss"/>.</para>
/// <para><b>Reference</b>: BGE-M3 (Chen et al. 2024), section "self-knowledge distillation"; FlagEmbedding
/// <c>distill_loss("kl_div", self_teacher_targets, scores)</c>.</para>
/// <para><b>Siblings</b>: <see cref="KlDivTeacherLoss"/> (teacher from data), <see cref="M3KdLoss"/>.</para>
/// </remarks>
public static class SelfDistillationLoss
{
    public static Tensor Compute(Tensor studentLogits, Tensor ensembleLogits, Tensor? exclude = null)
    {
        if (studentLogits.dim() != 2 || !studentLogits.shape.SequenceEqual(ensembleLogits.shape))
            throw new ArgumentException(
                $"student and ensemble logits must share a [B, C] shape, got [{string.Join(", ", studentLogits.shape)}] and [{string.Join(", ", ensembleLogits.shape)}]");
        var student = LossMath.Exclude(LossMath.Upcast(studentLogits), exclude);
        var teacher = LossMath.Exclude(LossMath.Upcast(ensembleLogits).detach(), exclude).softmax(-1); // [B, C]
        var weighted = teacher.to_type(student.dtype) * student.log_softmax(-1);                       // [B, C]
        if (exclude is not null)
            weighted = where(exclude, zeros_like(weighted), weighted);
        return -weighted.sum(-1).mean();
    }

    /// <summary>Whether self-distillation applies at <paramref name="microStep"/> (0-based): <c>microStep &gt; startStep</c>.</summary>
    public static bool IsActive(long microStep, int startStep) => microStep > startStep;
}
