namespace M3Train.Data;

/// <summary>The result of reading one training file once: its row kind, its valid rows' <see cref="RowInfo"/>, its bad rows.</summary>
/// <param name="Kind">Kind of the file's first valid row (rows of the other kind are bad).</param>
/// <param name="TotalRows">Non-blank rows read, valid or not.</param>
/// <param name="Types">Distinct <c>type</c> values, indexed by <see cref="RowInfo.TypeId"/>.</param>
/// <param name="Rows">Valid rows in file order.</param>
/// <param name="BadRows">Line (JSONL) or row (Parquet) number and reason of each row that cannot be trained on, in file order.</param>
public sealed record IndexedRows(RowKind Kind, long TotalRows, IReadOnlyList<string> Types, RowInfo[] Rows, IReadOnlyList<(long Line, string Reason)> BadRows);
