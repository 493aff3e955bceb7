using M3Train.Training.Losses;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// What <see cref="M3BatchLoss.Prepare"/> builds on the host for one micro-batch, already on the rank's device: teacher
/// scores and the false-negative mask, over the global batch ([W·B, G] and [W·B, W·B·G]) when <see cref="CrossDevice"/>,
/// else over the rank's rows ([B, G], and [B, B·G] or [B, G] without in-batch negatives).
/// </summary>
/// <param name="GroupSize">G.</param>
/// <param name="InBatchNegatives">Each query is scored against every passage of the batch, not only its own group.</param>
/// <param name="CrossDevice">The dense loss spans every rank's rows (several ranks, in-batch negatives, the dense head).</param>
/// <param name="TeacherScores">Teacher scores, or null when the data has none.</param>
/// <param name="Mask">The false-negative mask, or null when the data has no hashes to compare or <c>loss.mask_duplicate_negatives</c> is off.</param>
/// <param name="MaskedColumns">Masked entries in this rank's rows (the figure <c>masked_negatives</c>).</param>
public sealed record M3BatchHostInputs(int GroupSize, bool InBatchNegatives, bool CrossDevice, Tensor? TeacherScores,
    FalseNegativeMask? Mask, int MaskedColumns) : IDisposable
{
    public void Dispose()
    {
        TeacherScores?.Dispose();
        Mask?.Mask.Dispose();
    }
}
