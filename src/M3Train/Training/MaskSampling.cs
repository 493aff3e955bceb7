namespace M3Train.Training;

/// <summary>How a masking ratio r picks positions out of the n candidates of a row.</summary>
public enum MaskSampling
{
    /// <summary>
    /// Exactly k = max(1, round(r · n)) of them (0 when n = 0 or r = 0; round half to even), uniformly at random, as
    /// RetroMAE's collator picks a fixed number of words. Costs a sort per row.
    /// </summary>
    Exact,

    /// <summary>Each one independently with probability r (HF's <c>DataCollatorForLanguageModeling</c>); the count varies.</summary>
    Bernoulli,
}
