namespace M3Train.Data;

/// <summary>
/// What the batch plan needs of a valid row without reading it again: where it is, its token counts
/// (untruncated, with &lt;s&gt; and &lt;/s&gt;), its number of negatives, whether it has teacher scores and its type.
/// </summary>
/// <param name="Key">JSONL: byte offset of the line; Parquet: row index.</param>
/// <param name="Line">1-based line (JSONL) or row (Parquet) number, for messages.</param>
/// <param name="QueryTokens">Tokens of the query as encoded (instruction included), or of a text row's text.</param>
/// <param name="PassageTokens">Tokens of the longest positive or negative (0 for a text row).</param>
/// <param name="Negatives">Number of negatives.</param>
/// <param name="HasScores">Whether the row carries teacher scores.</param>
/// <param name="TypeId">Index of the row's <c>type</c> in its file's type table; -1 for none.</param>
public readonly record struct RowInfo(long Key, long Line, int QueryTokens, int PassageTokens, int Negatives, bool HasScores, short TypeId);
