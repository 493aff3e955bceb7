namespace M3Train.Text;

/// <summary>
/// Length-sorted batching for inference, longest texts first (as FlagEmbedding's <c>encode</c>), so a batch pads
/// little and the first batch shows at once whether memory suffices. A batch holds at most <c>maxRows</c> texts
/// of up to <see cref="ReferenceLength"/> tokens; longer texts go in smaller batches whose attention scores
/// (rows × length², the part that grows fastest) are no larger than those of <c>maxRows</c> texts of
/// <see cref="ReferenceLength"/> tokens: with 256, one text of 8192 tokens a batch, 64 of 1024. So raising
/// <c>--max-length</c> to a model's 8192 positions does not raise the memory a batch takes.
/// </summary>
public static class LengthBatches
{
    /// <summary>The length up to which <c>maxRows</c> texts go in one batch: FlagEmbedding's default max_length.</summary>
    public const int ReferenceLength = 512;

    /// <summary>Indices into <paramref name="lengths"/> in batches, longest first (stable among equal lengths).</summary>
    public static IEnumerable<int[]> LongestFirst(IReadOnlyList<int> lengths, int maxRows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRows, 1);
        int[] order = Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).ToArray();
        for (int start = 0; start < order.Length;)
        {
            int rows = Math.Min(RowsFor(lengths[order[start]], maxRows), order.Length - start);
            yield return order[start..(start + rows)];
            start += rows;
        }
    }

    /// <summary>Texts per batch when the longest has <paramref name="length"/> tokens.</summary>
    public static int RowsFor(int length, int maxRows)
    {
        if (length <= ReferenceLength) return maxRows;
        double share = (double)ReferenceLength / length;
        return Math.Max(1, (int)Math.Min(maxRows, Math.Floor(maxRows * share * share)));
    }
}
