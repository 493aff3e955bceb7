namespace M3Train.Data;

/// <summary>Separates the <see cref="DataRandom"/> streams of the pipeline's independent random choices.</summary>
public enum DataRandomPurpose
{
    /// <summary>Order of rows inside one (dataset, bin) before they are cut into batches.</summary>
    RowOrder = 1,
    /// <summary>Order of all batches of an epoch.</summary>
    BatchOrder = 2,
    /// <summary>A row's positive, negatives and passage shuffling.</summary>
    Group = 3,
    /// <summary>Hard-negative mining's sample of a row's negatives and its padding (M3Train.Eval.HardNegativeMiner).</summary>
    HardNegatives = 4,
    /// <summary>The rows of a dataset kept under <c>data.max_examples_per_dataset</c>.</summary>
    DatasetSample = 5,
}
