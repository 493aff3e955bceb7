using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// Turns teacher scores from the data (<c>pos_scores</c>, <c>neg_scores</c> of each row, in group order) into
/// the target distribution of <see cref="M3KdLoss"/> and <see cref="KlDivTeacherLoss"/>:
/// <c>t = softmax(teacher_scores.view(B, G))</c>, with no temperature (docs/METHOD.md, "Teacher scores from the data").
/// </summary>
public static class TeacherTargets
{
    /// <summary>Teacher scores [B·G] or [B, G] → targets [B, G] (fp32 unless given fp64), no gradient.</summary>
    public static Tensor FromScores(Tensor teacherScores, int groupSize)
    {
        if (teacherScores.numel() % groupSize != 0)
            throw new ArgumentException($"{teacherScores.numel()} teacher scores do not split into groups of {groupSize}");
        var scores = teacherScores.dtype == ScalarType.Float64 ? teacherScores : teacherScores.to_type(ScalarType.Float32);
        return scores.detach().reshape(-1, groupSize).softmax(-1); // [B, G]
    }
}
