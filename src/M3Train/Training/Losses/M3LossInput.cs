using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// One batch's scores for <see cref="M3UnifiedLoss"/>. All scores are similarities, before the temperature.
/// </summary>
/// <remarks>
/// Shape legend: B queries on this rank, G passages per query, W ranks, C columns
/// (C = B·G with in-batch negatives, C = G without).
/// </remarks>
public sealed record M3LossInput
{
    /// <summary>G, passages per query (1 positive + G-1 negatives).</summary>
    public required int GroupSize { get; init; }

    /// <summary>False for <c>no_in_batch_neg</c> data: every score matrix is then the local [B, G] block.</summary>
    public bool InBatchNegatives { get; init; } = true;

    /// <summary>Dense similarities [B, C]; leave null when <see cref="DenseCrossDevice"/> is set (its Local block is used).</summary>
    public Tensor? Dense { get; init; }

    /// <summary>Lexical similarities [B, C]; required when the sparse head is enabled.</summary>
    public Tensor? Sparse { get; init; }

    /// <summary>Multi-vector similarities [B, C]; required when the colbert head is enabled.</summary>
    public Tensor? Colbert { get; init; }

    /// <summary>Dense scores over gathered embeddings (cross-device negatives, in-batch mode only).</summary>
    public CrossDeviceDenseScores? DenseCrossDevice { get; init; }

    /// <summary>Teacher scores from the data, [B·G] or [B, G] in group order, on the scores' device; null when the data
    /// has none. With <see cref="DenseCrossDevice"/>: the gathered [W·B·G] or [W·B, G] scores of all ranks.</summary>
    public Tensor? TeacherScores { get; init; }

    /// <summary>Bool [B, C] on the scores' device, true = exclude the column from that row (<see cref="FalseNegativeMask"/>).
    /// With <see cref="DenseCrossDevice"/>: the global [W·B, W·B·G] mask.</summary>
    public Tensor? ExcludeMask { get; init; }
}
