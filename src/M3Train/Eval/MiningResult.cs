namespace M3Train.Eval;

/// <summary>Mined negatives per input row and what the mining did.</summary>
/// <param name="Negatives">Negatives of each input row, in row order (empty for a dropped row).</param>
/// <param name="EmptyRows">Input rows (0-based) that had no negative left before <see cref="MiningOptions.OnEmpty"/> applied, ascending.</param>
/// <param name="DroppedRows">Input rows (0-based) to leave out of the output.</param>
/// <param name="Summary">The counts, for the log.</param>
public sealed record MiningResult(IReadOnlyList<string[]> Negatives, IReadOnlyList<int> EmptyRows, IReadOnlySet<int> DroppedRows, MiningSummary Summary);
