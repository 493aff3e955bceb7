namespace M3Train.Eval;

/// <summary>What <see cref="ScoreFusion"/> uses for a document that one candidate list does not contain.</summary>
public enum MissingScore
{
    /// <summary>That list's lowest score: an upper bound for a document it cut off (pyserini's hybrid fusion).</summary>
    ListMinimum,

    /// <summary>Zero.</summary>
    Zero,
}
