namespace M3Train.Data;

/// <summary>
/// One part of a data file: the bytes [<paramref name="Start"/>, <paramref name="End"/>). A JSONL part holds the lines
/// that start in it; a Parquet part the row groups <paramref name="FirstGroup"/> .. + <paramref name="Groups"/> whose
/// data starts in it.
/// </summary>
public sealed record PartRange(long Start, long End, int FirstGroup, int Groups);
