namespace M3Train.Training;

/// <summary>
/// The largest size in [1, max] that passes a test which holds up to some size and fails above it (a batch that fits in
/// memory), in few tests: from a starting guess, grow by a factor while it passes (or shrink while it fails), then bisect
/// the bracket until it is within a relative tolerance. Each size is tested at most once.
/// </summary>
public static class BatchSearch
{
    /// <param name="tolerance">Stop bisecting once the largest passing size is within this share of the answer (0: exact).</param>
    /// <param name="growth">Factor between the sizes tried before bisecting: 2 (doubling) from a blind start, less from a good guess.</param>
    /// <returns>The largest passing size found, or 0 when even 1 fails.</returns>
    public static int Largest(int start, int max, Func<int, bool> passes, double tolerance = 0, double growth = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(growth, 1);
        int size = Math.Clamp(start, 1, max);
        int lo, hi; // lo passes (0: none known), hi fails (max + 1: none known)
        if (passes(size))
        {
            lo = size;
            hi = max + 1;
            while (lo < max)
            {
                int next = Math.Min(Math.Max(lo + 1, (int)(lo * growth)), max);
                if (passes(next)) lo = next;
                else { hi = next; break; }
            }
        }
        else
        {
            hi = size;
            lo = 0;
            while (hi > 1)
            {
                int next = Math.Max(1, Math.Min(hi - 1, (int)(hi / growth)));
                if (passes(next)) { lo = next; break; }
                hi = next;
            }
        }
        while (hi - lo > Math.Max(1, (int)(lo * tolerance)))
        {
            int mid = lo + (hi - lo) / 2;
            if (passes(mid)) lo = mid;
            else hi = mid;
        }
        return lo;
    }
}
