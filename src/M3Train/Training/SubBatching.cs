namespace M3Train.Training;

/// <summary>
/// How a step splits its batch into GradCache sub-batches: one size for every length bin (<c>train.sub_batch_size</c>),
/// or one per bin (<c>train.sub_batch_sizes</c>, 0 for a bin encoded in one pass). A plain size converts to it.
/// </summary>
/// <param name="Size">Texts per sub-batch in every bin; null: no sub-batches.</param>
/// <param name="PerBin">Texts per sub-batch of each bin, in place of <paramref name="Size"/> when not empty.</param>
public readonly record struct SubBatching(int? Size, IReadOnlyList<int>? PerBin = null)
{
    /// <summary>The sub-batch size of length bin <paramref name="bin"/>; null: the bin's batch in one pass.</summary>
    public int? Of(int bin) => PerBin is { Count: > 0 } sizes ? (sizes[bin] > 0 ? sizes[bin] : null) : Size;

    /// <summary>The run's sub-batching, from <c>train.sub_batch_size</c> and <c>train.sub_batch_sizes</c>.</summary>
    public static SubBatching Of(TrainConfig train) => new(train.SubBatchSize, train.SubBatchSizes);

    public static implicit operator SubBatching(int? size) => new(size);
}
