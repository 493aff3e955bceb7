namespace M3Train.Data;

/// <summary>What a part of a row index says about its stretch of the data file, besides its rows.</summary>
/// <param name="Kind">The kind of the file's first valid row (rows of the other kind are bad).</param>
/// <param name="TotalRows">Non-blank rows read, valid or not.</param>
/// <param name="Lines">JSONL: lines that start in the part, blank ones included; Parquet: rows of its row groups.</param>
/// <param name="FirstLineOffset">JSONL: byte offset where the part's first line starts.</param>
/// <param name="ContentHash">SHA-256 (hex) of the part's byte range of the data file.</param>
/// <param name="FirstType">The <c>type</c> of the part's first valid row.</param>
/// <param name="ScoredRows">Valid rows with teacher scores.</param>
/// <param name="FirstGroup">Parquet: the first row group of the part.</param>
/// <param name="GroupRows">Parquet: the rows of each of its row groups; empty for JSONL.</param>
/// <param name="BadRows">Rows that cannot be trained on, in file order.</param>
public sealed record RowIndexSummary(RowKind Kind, long TotalRows, long Lines, long FirstLineOffset, string ContentHash, string? FirstType,
    long ScoredRows, int FirstGroup, long[] GroupRows, IReadOnlyList<IndexedBadRow> BadRows);
