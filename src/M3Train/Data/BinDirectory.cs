namespace M3Train.Data;

/// <summary>
/// Where each length bin's rows are in each dataset, without a list of them: for every block of 4096 rows, how many
/// rows of each bin come before it. The n-th row of a bin is then a binary search over blocks and a scan of one
/// block's records in the mapped index. It costs 4 bytes per bin per 4096 rows (about 0.01 bytes per row with the
/// default 9 bins) and one pass over the index to build, in parallel.
/// </summary>
public sealed class BinDirectory
{
    const int BlockRows = 4096;
    const int ScanRows = 256;

    readonly TrainData _data;
    readonly int[] _edges;
    readonly int _bins;
    /// <summary>Per dataset: [block · bins + bin] = rows of the bin in blocks before <c>block</c>; one more block than the dataset has.</summary>
    readonly int[][] _before;

    BinDirectory(TrainData data, int[] edges, int[][] before)
    {
        _data = data;
        _edges = edges;
        _bins = edges.Length + 1;
        _before = before;
    }

    public static BinDirectory Build(TrainData data)
    {
        int[] edges = [.. data.Config.BinEdges];
        int bins = edges.Length + 1;
        var before = new int[data.Datasets.Count][];
        for (int d = 0; d < data.Datasets.Count; d++)
        {
            var dataset = data.Datasets[d];
            int blocks = (dataset.Count + BlockRows - 1) / BlockRows;
            var counts = new int[(blocks + 1) * bins];
            Parallel.For(0, blocks, () => new byte[BlockRows], (block, _, rowBins) =>
            {
                int start = block * BlockRows, n = Math.Min(BlockRows, dataset.Count - start);
                dataset.BinsOf(start, rowBins.AsSpan(0, n), data.Config, edges);
                for (int i = 0; i < n; i++) counts[(block + 1) * bins + rowBins[i]]++;
                return rowBins;
            }, _ => { });
            for (int block = 1; block <= blocks; block++)
                for (int bin = 0; bin < bins; bin++) counts[block * bins + bin] += counts[(block - 1) * bins + bin];
            before[d] = counts;
        }
        return new BinDirectory(data, edges, before);
    }

    /// <summary>Memory the directory takes.</summary>
    public long Bytes => _before.Sum(counts => (long)counts.Length * sizeof(int));

    /// <summary>Rows of <paramref name="dataset"/> in <paramref name="bin"/>.</summary>
    public int Count(int dataset, int bin) => _before[dataset][^(_bins - bin)];

    /// <summary>The dataset row that is the <paramref name="nth"/> (from 0, in file order) of the bin's rows.</summary>
    public int Select(int dataset, int bin, int nth)
    {
        int[] before = _before[dataset];
        if ((uint)nth >= (uint)Count(dataset, bin)) throw new ArgumentOutOfRangeException(nameof(nth), $"row {nth} of a bin of {Count(dataset, bin)}");
        int low = 0, high = before.Length / _bins - 2;
        while (low < high)
        {
            int mid = (low + high + 1) / 2;
            if (before[mid * _bins + bin] <= nth) low = mid;
            else high = mid - 1;
        }
        // Rows are binned a slice at a time, stopping at the one sought: half a block on average.
        var ds = _data.Datasets[dataset];
        int left = nth - before[low * _bins + bin];
        Span<byte> rowBins = stackalloc byte[ScanRows];
        for (int start = low * BlockRows, end = Math.Min(start + BlockRows, ds.Count); start < end; start += ScanRows)
        {
            var slice = rowBins[..Math.Min(ScanRows, end - start)];
            ds.BinsOf(start, slice, _data.Config, _edges);
            for (int i = 0; i < slice.Length; i++)
                if (slice[i] == bin && left-- == 0) return start + i;
        }
        throw new InvalidOperationException($"the bin directory of dataset {dataset} does not match its rows");
    }
}
