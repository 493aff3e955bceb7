namespace M3Train.Eval;

/// <summary>Settings of <see cref="HardNegativeMiner"/> (docs/METHOD.md, "Hard-negative mining", with the score filters of issue 11).</summary>
public sealed record MiningOptions
{
    /// <summary>First dense rank (0-based) negatives are drawn from. Default 10 (FlagEmbedding's <c>range_for_sampling 10-210</c>).</summary>
    public int RangeStart { get; init; } = 10;

    /// <summary>End of the rank range, exclusive: the search retrieves this many. Default 210.</summary>
    public int RangeEnd { get; init; } = 210;

    /// <summary>Negatives per row. Default 15.</summary>
    public int Negatives { get; init; } = 15;

    /// <summary>Seed of the sampling; the same seed and input give the same output. Default 42.</summary>
    public long Seed { get; init; } = 42;

    /// <summary>Drop candidates scoring above <c>positive × (1 - margin)</c>; null (the default) keeps them. In [0, 1).</summary>
    public double? RelativeMargin { get; init; }

    /// <summary>Drop candidates scoring above <c>positive - margin</c>; null (the default) keeps them. At least 0.</summary>
    public double? AbsoluteMargin { get; init; }

    /// <summary>What happens to a row left without any negative. Default <see cref="EmptyNegativesPolicy.Fill"/>.</summary>
    public EmptyNegativesPolicy OnEmpty { get; init; } = EmptyNegativesPolicy.Fill;

    /// <summary>Query truncation in tokens. Default 512.</summary>
    public int MaxQueryLength { get; init; } = 512;

    /// <summary>Passage truncation in tokens. Default 512.</summary>
    public int MaxPassageLength { get; init; } = 512;

    /// <summary>Prepended to every query before it is encoded (the instruction the model was trained with); null: nothing. The rows keep their queries.</summary>
    public string? QueryInstruction { get; init; }

    /// <summary>Throws a <see cref="M3TrainException"/> naming the option that is out of range.</summary>
    public void Validate()
    {
        if (RangeStart < 0 || RangeEnd <= RangeStart)
            throw new M3TrainException($"--range {RangeStart}-{RangeEnd}: expected a-b with 0 <= a < b");
        if (Negatives < 1) throw new M3TrainException($"--negatives {Negatives}: must be at least 1");
        if (RelativeMargin is { } r && (r < 0 || r >= 1 || double.IsNaN(r)))
            throw new M3TrainException($"--relative-margin {r}: must be in [0, 1)");
        if (AbsoluteMargin is { } a && (a < 0 || double.IsNaN(a)))
            throw new M3TrainException($"--absolute-margin {a}: must be at least 0");
    }
}
