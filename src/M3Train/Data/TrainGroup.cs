namespace M3Train.Data;

/// <summary>One query's training group: the query text as encoded, G passages (positive first), and their teacher scores or null.</summary>
public sealed record TrainGroup(string Query, string[] Passages, float[]? Scores);
