namespace M3Train.Distributed;

/// <summary>What <see cref="CollectiveCheck"/> runs: tensor sizes, timed repetitions, and an optional soak.</summary>
public sealed record CollectiveCheckOptions
{
    /// <summary>Bytes of each rank's tensor (multiples of 4).</summary>
    public IReadOnlyList<long> Sizes { get; init; } = [4 << 10, 256 << 10, 4 << 20];

    public int Iterations { get; init; } = 5;
    public int Warmup { get; init; } = 1;

    /// <summary>After the checks, keep all-reducing the largest size (checking each result) this long.</summary>
    public TimeSpan Soak { get; init; } = TimeSpan.Zero;
}
