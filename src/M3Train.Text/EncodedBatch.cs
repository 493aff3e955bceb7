namespace M3Train.Text;

/// <summary>
/// Token ids and attention mask of a batch, right-padded with <see cref="XlmrTokenizer.PadId"/>,
/// row-major [BatchSize, SequenceLength], ready to become int64 tensors.
/// </summary>
public sealed record EncodedBatch(long[] InputIds, long[] AttentionMask, int BatchSize, int SequenceLength)
{
    /// <summary>Pads to the longest row, rounded up to a multiple of <paramref name="padToMultipleOf"/>; mask 1 on tokens, 0 on padding.</summary>
    public static EncodedBatch Pad(IReadOnlyList<int[]> ids, int padToMultipleOf = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(padToMultipleOf, 1);
        int longest = 0;
        foreach (var row in ids) longest = Math.Max(longest, row.Length);
        int length = (longest + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf;
        var inputIds = new long[ids.Count * length];
        var mask = new long[ids.Count * length];
        for (int b = 0; b < ids.Count; b++)
        {
            var row = ids[b];
            int start = b * length;
            for (int t = 0; t < row.Length; t++)
            {
                inputIds[start + t] = row[t];
                mask[start + t] = 1;
            }
            Array.Fill(inputIds, XlmrTokenizer.PadId, start + row.Length, length - row.Length);
        }
        return new EncodedBatch(inputIds, mask, ids.Count, length);
    }
}
