namespace M3Train.Eval;

/// <summary>Hybrid scores of one row's query against its positives and its negatives, in their order.</summary>
public sealed record RowScores(float[] Positives, float[] Negatives);
