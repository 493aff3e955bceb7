using M3Train.Text;

namespace M3Train.Data;

/// <summary>
/// One replica's share of a planned batch, tokenized and padded on the host. Shapes: B queries, G passages each.
/// <list type="bullet">
/// <item><see cref="Queries"/> [B, Lq]; for text rows (RetroMAE) the texts, and <see cref="Passages"/> is null.</item>
/// <item><see cref="Passages"/> [B·G, Lp], ordered [q0 pos, q0 negs..., q1 pos, ...].</item>
/// <item><see cref="TeacherScores"/> [B, G] row-major, aligned with the passages; null when the dataset has none.</item>
/// <item><see cref="QuerySubBatches"/>/<see cref="PassageSubBatches"/>: the same rows sorted by length and cut into
/// sub-batches of the bin's sub-batch size, each padded to its own longest text (<see cref="SubBatches.ByLength"/>);
/// null unless sub-batching and <c>data.pad_per_sub_batch</c> are on.</item>
/// <item><see cref="PassageHashes"/> [B·G] hashes of the passage texts and <see cref="PositiveHashes"/> [B][#pos] of every
/// positive of each row, for masking in-batch negatives that are really positives.</item>
/// </list>
/// </summary>
public sealed record TrainBatch(
    int Epoch,
    int Step,
    int Dataset,
    string DatasetName,
    int Bin,
    int[] Rows,
    EncodedBatch Queries,
    EncodedBatch? Passages,
    float[]? TeacherScores,
    int GroupSize,
    bool NoInBatchNegatives,
    SubBatches? QuerySubBatches,
    SubBatches? PassageSubBatches,
    ulong[]? PassageHashes = null,
    ulong[][]? PositiveHashes = null)
{
    public int BatchSize => Queries.BatchSize;

    /// <summary>The queries in pieces of at most <paramref name="subBatch"/> texts (see <see cref="Pieces"/>).</summary>
    public SubBatches QueryPieces(int subBatch) => Pieces(Queries, QuerySubBatches, subBatch);

    /// <summary>The passages in pieces of at most <paramref name="subBatch"/> texts (see <see cref="Pieces"/>).</summary>
    public SubBatches PassagePieces(int subBatch) =>
        Pieces(Passages ?? throw new InvalidOperationException($"{DatasetName}: a batch of text rows has no passages"), PassageSubBatches, subBatch);

    /// <summary>The sub-batches of a padded batch: the collator's own (sorted, each padded to its longest text) or row slices in batch order.</summary>
    static SubBatches Pieces(EncodedBatch whole, SubBatches? collated, int subBatch)
    {
        if (collated is not null) return collated;
        var pieces = new List<EncodedBatch>();
        int l = whole.SequenceLength;
        for (int start = 0; start < whole.BatchSize; start += subBatch)
        {
            int n = Math.Min(subBatch, whole.BatchSize - start);
            pieces.Add(new EncodedBatch(whole.InputIds[(start * l)..((start + n) * l)], whole.AttentionMask[(start * l)..((start + n) * l)], n, l));
        }
        return new SubBatches(pieces, null);
    }
}
