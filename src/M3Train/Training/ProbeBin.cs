using M3Train.Data;

namespace M3Train.Training;

/// <summary>
/// A length bin of <c>data.bin_edges</c> as <see cref="BatchSizeProbe"/> runs it: its token range, the longest query
/// and passage a row of it can hold (each capped at its maximum length, padded as the collator pads, and capped at the
/// model's positions), and the earlier bin with the same lengths whose result it takes over.
/// </summary>
/// <param name="Upper">Exclusive upper edge; null for the last bin.</param>
/// <param name="SameAs">An earlier bin with identical lengths (e.g. a bin above every maximum length, which no row reaches).</param>
public sealed record ProbeBin(int Index, int Lower, int? Upper, int QueryLength, int PassageLength, int? SameAs)
{
    public string Range => Upper is int u ? $"[{Lower}, {u})" : $"[{Lower}, ∞)";

    /// <summary>
    /// The bins of <paramref name="data"/>: a bin [lo, hi) holds rows of at most hi - 1 tokens, the last bin rows up to the
    /// longer maximum length; the query length is that capped at <c>query_max_len</c>, the passage length at
    /// <c>passage_max_len</c>, both rounded up to <c>pad_to_multiple_of</c> and capped at <paramref name="modelMaxTokens"/>.
    /// </summary>
    public static IReadOnlyList<ProbeBin> Of(DataConfig data, int modelMaxTokens)
    {
        var edges = data.BinEdges;
        for (int i = 0; i < edges.Count; i++)
            if (edges[i] <= 0 || (i > 0 && edges[i] <= edges[i - 1]))
                throw new M3TrainException($"data.bin_edges must be positive and increasing; got {string.Join(", ", edges)}");
        int longestRow = Math.Max(data.QueryMaxLen, data.PassageMaxLen);
        var bins = new List<ProbeBin>();
        for (int i = 0; i <= edges.Count; i++)
        {
            int lower = i == 0 ? 0 : edges[i - 1];
            int? upper = i < edges.Count ? edges[i] : null;
            int longest = upper is int u ? u - 1 : longestRow;
            int query = Length(Math.Min(longest, data.QueryMaxLen), data.PadToMultipleOf, modelMaxTokens);
            int passage = Length(Math.Min(longest, data.PassageMaxLen), data.PadToMultipleOf, modelMaxTokens);
            int? sameAs = bins.FirstOrDefault(b => b.QueryLength == query && b.PassageLength == passage)?.Index;
            bins.Add(new ProbeBin(i, lower, upper, query, passage, sameAs));
        }
        return bins;
    }

    /// <summary>At least &lt;s&gt; and &lt;/s&gt;, as every tokenized text.</summary>
    static int Length(int tokens, int padToMultipleOf, int modelMaxTokens) =>
        Math.Max(2, Math.Min((tokens + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf, modelMaxTokens));
}
