namespace M3Train.Data;

/// <summary>
/// What the batch plan needs of a valid row without reading it again: where it is, its token counts
/// (untruncated, with &lt;s&gt; and &lt;/s&gt;), its number of negatives, whether it has teacher scores and the rule of
/// its type. The row index stores it in 12 bytes (<see cref="PackedRow"/>), so counts are capped where the cap
/// changes nothing: every maximum length is at most 2^20 tokens and every group at most 1024 passages.
/// </summary>
/// <param name="Key">JSONL: byte offset of the line; Parquet: row number in the file, from 0.</param>
/// <param name="QueryTokens">Tokens of the query as encoded (instruction included), or of a text row's text; at most <see cref="PackedRow.TokenCap"/>.</param>
/// <param name="PassageTokens">Tokens of the longest positive or negative (0 for a text row); at most <see cref="PackedRow.TokenCap"/>.</param>
/// <param name="Negatives">Number of negatives, at most <see cref="PackedRow.NegativesCap"/>.</param>
/// <param name="HasScores">Whether the row carries teacher scores.</param>
/// <param name="TypeRule">What the row's <c>type</c> changes (<see cref="TrainGroupRules"/>).</param>
public readonly record struct RowInfo(long Key, int QueryTokens, int PassageTokens, int Negatives, bool HasScores, RowTypeRule TypeRule)
{
    /// <summary>The row as the index stores it: counts capped.</summary>
    public static RowInfo Capped(long key, int queryTokens, int passageTokens, int negatives, bool hasScores, RowTypeRule rule) =>
        new(key, Math.Min(queryTokens, PackedRow.TokenCap), Math.Min(passageTokens, PackedRow.TokenCap),
            Math.Min(negatives, PackedRow.NegativesCap), hasScores, rule);
}
