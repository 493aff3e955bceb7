namespace M3Train.Eval;

/// <summary>Mined negatives per input row (in row order) and what the mining did.</summary>
public sealed record MiningResult(IReadOnlyList<string[]> Negatives, MiningSummary Summary);
