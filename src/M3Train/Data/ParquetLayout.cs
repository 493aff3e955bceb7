namespace M3Train.Data;

/// <summary>What the footer of a Parquet training file says about its rows: where each row group starts and how many rows it holds.</summary>
/// <param name="DoubleScores">Teacher scores are stored as double (else float).</param>
/// <param name="PosStrings">pos (or positive) is a string column, not a list of strings.</param>
/// <param name="NegStrings">neg (or negative) is a string column, not a list of strings.</param>
/// <param name="GroupRows">Rows of each row group.</param>
/// <param name="GroupOffsets">Byte offset where each row group's data starts, never decreasing.</param>
public sealed record ParquetLayout(bool DoubleScores, bool PosStrings, bool NegStrings, long[] GroupRows, long[] GroupOffsets);
