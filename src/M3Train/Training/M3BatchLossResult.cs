using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>What <see cref="M3BatchLoss.Compute"/> gives for this rank's slice of one global batch.</summary>
/// <param name="Loss">This rank's share of the batch loss (the mean over ranks is the batch's), on its device, with its graph.</param>
/// <param name="Parts">Detached, this rank's: <c>loss_dense</c>, <c>loss_sparse</c>, <c>loss_colbert</c>,
/// <c>loss_ensemble</c>, <c>loss_distill</c> (those the loss has) and, with G &gt; 1, <c>{head}_pos</c> / <c>{head}_neg</c>
/// (mean raw score of each query's positive and of its own negatives).</param>
/// <param name="MaskedColumns">In-batch (row, column) entries of this rank's rows that are duplicates of a row's positive:
/// those the false-negative mask excludes (counted whether or not <c>loss.mask_duplicate_negatives</c> applies it).</param>
public sealed record M3BatchLossResult(Tensor Loss, IReadOnlyDictionary<string, Tensor> Parts, int MaskedColumns);
