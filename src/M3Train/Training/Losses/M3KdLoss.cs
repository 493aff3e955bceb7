using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace M3Train.Training.Losses;

/// <summary>
/// BGE-M3's knowledge-distillation loss (FlagEmbedding <c>kd_loss_type = m3_kd_loss</c>, the M3 default):
/// each passage of the query's group is in turn the target of a cross-entropy weighted by the teacher's
/// probability for it; after its step, its column leaves the softmax of the steps that follow.
/// </summary>
/// <remarks>
/// <para><b>Computes</b>, with t the teacher targets [R, G] (<see cref="TeacherTargets.FromScores"/>):
/// <c>mask = 0; loss = 0; for i in 0..G-1: loss += mean_r(t[r,i] · CE(S + mask, col(r, i))_r);
/// mask[r, col(r, i)] = dtype minimum</c>, where col(r, i) = r·G + i with in-batch negatives ([R, R·G]) and
/// col(r, i) = i without them (the local [R, G] block). The steps run in <b>group order</b>: the positive first,
/// then the negatives in the order the group was sampled; the teacher's scores only weight the steps, they do not
/// reorder them. So step i's target competes with the in-batch negatives and with the group's passages i+1..G-1,
/// whatever the teacher thinks of those. docs/METHOD.md, "Teacher scores from the data".</para>
/// <para><b>Takes</b> logits (similarities / τ) [R, R·G] or [R, G], teacher targets [R, G] and an optional bool
/// exclude mask [R, C]. Excluded columns start masked; a step whose target column is itself excluded (a
/// negative identical to the query's positive) contributes 0 instead of an unbounded term.</para>
/// <para><b>Returns</b> a scalar (a sum over i of means over rows; the t[r, ·] sum to 1).</para>
/// <para><b>Reference</b>: FlagEmbedding <c>AbsEmbedderModel.distill_loss("m3_kd_loss", ...)</c>; BGE-M3
/// (Chen et al. 2024). Without in-batch negatives FlagEmbedding calls it on the local [B, G] block with the in-batch
/// targets b·G + i, which point outside the block for b ≥ 1; here the local targets are i.</para>
/// <para><b>Siblings</b>: <see cref="KlDivTeacherLoss"/> (the other teacher loss), <see cref="InfoNceLoss"/>
/// (no teacher), <see cref="SelfDistillationLoss"/> (teacher = the model's own ensemble).</para>
/// </remarks>
public static class M3KdLoss
{
    public static Tensor Compute(Tensor logits, Tensor teacherTargets, int groupSize, Tensor? exclude = null)
    {
        GroupLayout.Check(logits, groupSize, nameof(logits));
        CheckTargets(logits, teacherTargets, groupSize);
        var scores = LossMath.Upcast(logits);
        double min = LossMath.Min(scores.dtype);
        var teacher = teacherTargets.to_type(scores.dtype);

        var mask = zeros_like(scores);
        if (exclude is not null)
        {
            LossMath.CheckMask(scores, exclude);
            mask = mask.masked_fill(exclude, min);
        }
        var groupColumns = GroupLayout.GroupColumns(scores, groupSize);                        // [R, G]
        var columnIds = arange(scores.shape[1], dtype: ScalarType.Int64, device: scores.device).unsqueeze(0); // [1, C]
        var targetExcluded = exclude?.gather(1, groupColumns);                                  // [R, G]

        var loss = zeros(1, dtype: scores.dtype, device: scores.device).squeeze();
        for (int i = 0; i < groupSize; i++)
        {
            var target = groupColumns[.., i];                                                   // [R]
            var term = teacher[.., i] * F.cross_entropy(scores + mask, target, reduction: nn.Reduction.None); // [R]
            if (targetExcluded is not null)
                term = where(targetExcluded[.., i], zeros_like(term), term);
            loss = loss + term.mean();
            mask = mask.masked_fill(columnIds == target.unsqueeze(1), min);
        }
        return loss;
    }

    internal static void CheckTargets(Tensor logits, Tensor teacherTargets, int groupSize)
    {
        if (teacherTargets.dim() != 2 || teacherTargets.shape[0] != logits.shape[0] || teacherTargets.shape[1] != groupSize)
            throw new ArgumentException(
                $"teacher targets must be [{logits.shape[0]}, {groupSize}], got [{string.Join(", ", teacherTargets.shape)}]");
    }
}
