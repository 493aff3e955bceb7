namespace M3Train.Training.Losses;

/// <summary>
/// How teacher scores from the data (<c>pos_scores</c>/<c>neg_scores</c>) enter each head's loss
/// (docs/METHOD.md, "Teacher scores from the data"). Config values: <c>m3_kd_loss</c>, <c>kl_div</c>.
/// </summary>
public enum KdLossType
{
    /// <summary>FlagEmbedding's M3 default: one cross-entropy per group column, weighted by the teacher, earlier columns masked. See <see cref="Losses.M3KdLoss"/>.</summary>
    M3KdLoss,

    /// <summary>Teacher cross-entropy over the query's own [B, G] block plus the plain InfoNCE. See <see cref="KlDivTeacherLoss"/>.</summary>
    KlDiv,
}
