namespace M3Train.Data;

/// <summary>
/// A seeded permutation of [0, n) computed one index at a time, in constant memory: a six-round Feistel network on
/// the smallest even number of bits that holds n (at most 4n values), with cycle-walking (an index that lands at or
/// above n is permuted again until it lands below; about 2 rounds of walking on average, never more than the
/// domain's size). So the k-th row of a shuffled epoch is found without shuffling a list of every row.
/// </summary>
public sealed class FeistelPermutation
{
    const int Rounds = 6;
    readonly long _n;
    readonly int _halfBits;
    readonly ulong _mask;
    readonly ulong[] _keys = new ulong[Rounds];

    public FeistelPermutation(long n, DataRandom random)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        _n = n;
        int bits = 2;
        while (bits < 62 && 1L << bits < n) bits += 2;
        _halfBits = bits / 2;
        _mask = (1UL << _halfBits) - 1;
        for (int r = 0; r < Rounds; r++) _keys[r] = random.NextUInt64();
    }

    public long Count => _n;

    /// <summary>Where index <paramref name="i"/> goes.</summary>
    public long this[long i]
    {
        get
        {
            if ((ulong)i >= (ulong)_n) throw new ArgumentOutOfRangeException(nameof(i), $"{i} is outside [0, {_n})");
            ulong x = (ulong)i;
            do x = Encrypt(x);
            while (x >= (ulong)_n);
            return (long)x;
        }
    }

    ulong Encrypt(ulong x)
    {
        ulong left = x >> _halfBits, right = x & _mask;
        foreach (ulong key in _keys)
            (left, right) = (right, left ^ (DataRandom.Mix(right ^ key) & _mask));
        return left << _halfBits | right;
    }
}
