namespace M3Train.Data;

/// <summary>Ranges laid end to end (parts of a file, row groups, files of a dataset), given by their starts and, last, the end of the last one.</summary>
internal static class RangeStarts
{
    /// <summary>
    /// The range holding <paramref name="x"/>: the last range starting at or before it, so empty ranges that start
    /// where it is are passed over; -1 before the first range, the count of ranges at or past the end.
    /// </summary>
    public static int Find<T>(ReadOnlySpan<T> starts, T x) where T : IComparable<T>
    {
        int k = starts.BinarySearch(x);
        if (k < 0) return ~k - 1;
        while (k + 1 < starts.Length - 1 && starts[k + 1].CompareTo(x) == 0) k++;
        return k;
    }
}
