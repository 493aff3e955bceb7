namespace M3Train.Eval;

/// <summary>
/// What <see cref="HardNegativeMiner"/> does with a row that has no negative left after the rank range, the score
/// filters and the padding: fine-tuning refuses such a row whenever its groups need a negative.
/// </summary>
public enum EmptyNegativesPolicy
{
    /// <summary>Fill it with random pool texts that are not a positive or the query, which the score filters would
    /// have rejected; a row the pool cannot fill (it holds nothing else) is left out. The default: every written row trains.</summary>
    Fill,

    /// <summary>Leave it out of the output.</summary>
    Drop,

    /// <summary>Write it with <c>"neg": []</c> (for training with <c>train_group_size: 1</c>).</summary>
    Keep,
}
