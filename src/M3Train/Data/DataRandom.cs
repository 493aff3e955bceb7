namespace M3Train.Data;

/// <summary>
/// The data pipeline's random numbers: SplitMix64 streams keyed by (seed, purpose, indices), so every draw is a
/// pure function of where it is used (epoch, dataset, bin, row) and never of how many draws came before, of the
/// world size or of System.Random's implementation. Restoring a position needs no generator state beyond the seed.
/// </summary>
public struct DataRandom
{
    const ulong Golden = 0x9E3779B97F4A7C15;
    ulong _state;

    DataRandom(ulong state) => _state = state;

    /// <summary>The stream for <paramref name="purpose"/> at <paramref name="indices"/> (e.g. epoch, dataset, row).</summary>
    public static DataRandom For(long seed, DataRandomPurpose purpose, params ReadOnlySpan<long> indices)
    {
        ulong state = Mix((ulong)seed + Golden);
        state = Mix(state ^ ((ulong)purpose + Golden));
        foreach (long index in indices)
            state = Mix(state ^ ((ulong)index + Golden));
        return new DataRandom(state);
    }

    /// <summary>Next 64 random bits (SplitMix64).</summary>
    public ulong NextUInt64()
    {
        _state += Golden;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, <paramref name="n"/>), without modulo bias (Lemire's multiply-and-reject).</summary>
    public int NextInt(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ulong range = (ulong)n;
        while (true)
        {
            ulong high = Math.BigMul(NextUInt64(), range, out ulong low);
            if (low >= (0UL - range) % range) return (int)high;
        }
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    internal static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
