using System.Collections;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace M3Train.Data;

/// <summary>
/// The order of an epoch's batches (docs/METHOD.md, "Length bins and the batch plan"): each batch from one dataset and one length bin; rows
/// shuffled inside each (dataset, bin) and cut into global batches of (per-replica size × world size), the last
/// incomplete one dropped; then all batches shuffled. A pure function of (data, seed, epoch, world size), so every
/// replica computes the same plan and takes its own slice; it depends on the world size only through the global
/// batch size, so W replicas of B rows see exactly the batches of one replica of W·B rows.
/// <para>
/// Up to <see cref="DataConfig.ShuffleInMemoryRows"/> rows the shuffles are Fisher-Yates over lists of row numbers
/// (4 bytes a row, the order of earlier versions). Above, both are seeded permutations computed per batch
/// (<see cref="FeistelPermutation"/> over the bins of a <see cref="BinDirectory"/>): planning an epoch of a billion
/// rows takes no time and no memory beyond the directory, and a batch's rows are found when it is collated.
/// </para>
/// </summary>
public sealed class BatchPlan
{
    /// <summary>A row's bin is kept in a byte while planning.</summary>
    const int MaxBinEdges = 254;

    BatchPlan(int epoch, IReadOnlyList<PlannedBatch> batches, int droppedRows, string signature, bool permuted)
    {
        Epoch = epoch;
        Batches = batches;
        DroppedRows = droppedRows;
        Signature = signature;
        Permuted = permuted;
    }

    public int Epoch { get; }
    /// <summary>The epoch's batches in order (computed as they are asked for when <see cref="Permuted"/>).</summary>
    public IReadOnlyList<PlannedBatch> Batches { get; }
    public int Count => Batches.Count;
    /// <summary>Rows left out of this epoch because they did not fill a global batch.</summary>
    public int DroppedRows { get; }
    /// <summary>Identifies (data, seed, bins, global batch sizes, group size, kind of plan): equal signatures mean equal plans for every epoch.</summary>
    public string Signature { get; }
    /// <summary>Whether the order comes from seeded permutations computed per batch rather than shuffled lists.</summary>
    public bool Permuted { get; }

    public static BatchPlan Create(TrainData data, long seed, int epoch, int worldSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        var config = data.Config;
        bool permuted = data.RowCount > config.ShuffleInMemoryRows;
        var overrides = DatasetOverrides.Resolve(data);
        var signature = new StringBuilder($"{data.Fingerprint}|{seed}|{config.TrainGroupSize}|{string.Join(',', config.BinEdges)}|{overrides.Signature}");
        var groups = new List<BinGroup>();
        for (int d = 0; d < data.Datasets.Count; d++)
        {
            var dataset = data.Datasets[d];
            int[] sizes = ReplicaBatchSizes(config, dataset.Kind);
            int[]? kept = overrides.KeptRows(d, dataset.Count, seed, permuted);
            var keptOfBin = kept is null ? null : KeptRowsOfBins(dataset, kept, config, sizes.Length);
            for (int bin = 0; bin < sizes.Length; bin++)
            {
                int replicaSize = overrides.BatchSize(d, dataset.Type, sizes[bin]);
                signature.Append($"|{d}:{bin}:{replicaSize * worldSize}");
                groups.Add(new BinGroup(d, bin, replicaSize, replicaSize * worldSize, overrides.GroupSize(d), keptOfBin?[bin]));
            }
        }
        if (permuted) signature.Append("|permuted-v1");
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(signature.ToString())))[..16];
        return permuted ? CreatePermuted(data, groups, seed, epoch, hash) : CreateShuffled(data, groups, seed, epoch, hash);
    }

    /// <summary>
    /// One (dataset, bin) of the plan: its batch sizes, the dataset's passages per query before the type rules, and,
    /// where <see cref="DataConfig.MaxExamplesPerDataset"/> keeps only some rows, those of this bin in file order.
    /// </summary>
    sealed record BinGroup(int Dataset, int Bin, int ReplicaSize, int GlobalSize, int GroupSize, int[]? KeptRows);

    /// <summary>The kept rows of a dataset split by bin, each list in file order.</summary>
    static int[][] KeptRowsOfBins(TrainDataset dataset, int[] kept, DataConfig config, int bins)
    {
        var lists = new List<int>[bins];
        for (int b = 0; b < bins; b++) lists[b] = [];
        foreach (int row in kept) lists[BinOf(dataset.RowLength(row, config), config.BinEdges)].Add(row);
        return [.. lists.Select(l => l.ToArray())];
    }

    /// <summary>Fisher-Yates shuffles of row-number lists: the plan of data up to <see cref="DataConfig.ShuffleInMemoryRows"/> rows.</summary>
    static BatchPlan CreateShuffled(TrainData data, List<BinGroup> groups, long seed, int epoch, string signature)
    {
        var config = data.Config;
        int[] edges = [.. config.BinEdges];
        var batches = new List<PlannedBatch>();
        int dropped = 0;
        foreach (var datasetGroups in groups.GroupBy(g => g.Dataset))
        {
            int d = datasetGroups.Key;
            var dataset = data.Datasets[d];
            var rowsOfBin = new List<int>[edges.Length + 1];
            if (datasetGroups.All(g => g.KeptRows is null))
            {
                var bins = new byte[dataset.Count];
                dataset.BinsOf(0, bins, config, edges);
                for (int row = 0; row < bins.Length; row++) (rowsOfBin[bins[row]] ??= []).Add(row);
            }
            foreach (var group in datasetGroups)
            {
                IReadOnlyList<int>? rows = group.KeptRows ?? (IReadOnlyList<int>?)rowsOfBin[group.Bin];
                if (rows is not { Count: > 0 }) continue;
                int[] order = [.. rows];
                DataRandom.For(seed, DataRandomPurpose.RowOrder, epoch, d, group.Bin).Shuffle(order.AsSpan());
                int full = order.Length / group.GlobalSize;
                dropped += order.Length - full * group.GlobalSize;
                for (int k = 0; k < full; k++)
                    batches.Add(Batch(data, group, order[(k * group.GlobalSize)..((k + 1) * group.GlobalSize)]));
            }
        }
        var shuffled = batches.ToArray();
        DataRandom.For(seed, DataRandomPurpose.BatchOrder, epoch).Shuffle(shuffled.AsSpan());
        return new BatchPlan(epoch, shuffled, dropped, signature, permuted: false);
    }

    static BatchPlan CreatePermuted(TrainData data, List<BinGroup> groups, long seed, int epoch, string signature)
    {
        var bins = data.Bins;
        var nonEmpty = new List<(BinGroup Group, FeistelPermutation Rows, long FirstBatch)>();
        long batches = 0, dropped = 0;
        foreach (var group in groups)
        {
            int rows = group.KeptRows?.Length ?? bins.Count(group.Dataset, group.Bin);
            long full = rows / group.GlobalSize;
            dropped += rows - full * group.GlobalSize;
            if (full == 0) continue;
            nonEmpty.Add((group, new FeistelPermutation(rows, DataRandom.For(seed, DataRandomPurpose.RowOrder, epoch, group.Dataset, group.Bin)), batches));
            batches += full;
        }
        if (batches > int.MaxValue) throw new M3TrainException($"the data makes {batches} batches an epoch, more than {int.MaxValue}; raise data.batch_sizes");
        var order = new FeistelPermutation(batches, DataRandom.For(seed, DataRandomPurpose.BatchOrder, epoch));
        return new BatchPlan(epoch, new PermutedBatches(data, nonEmpty, order), (int)Math.Min(dropped, int.MaxValue), signature, permuted: true);
    }

    static PlannedBatch Batch(TrainData data, BinGroup group, int[] rows)
    {
        var dataset = data.Datasets[group.Dataset];
        return new PlannedBatch(group.Dataset, group.Bin, rows, group.ReplicaSize, GroupSize(dataset, rows[0], group.GroupSize),
            dataset.NoInBatchNegatives, dataset.HasTeacherScores);
    }

    /// <summary>The batches of a permuted plan: batch s is group-batch σ(s); its i-th row the π(k·size + i)-th row of its bin.</summary>
    sealed class PermutedBatches(TrainData data, List<(BinGroup Group, FeistelPermutation Rows, long FirstBatch)> groups, FeistelPermutation order)
        : IReadOnlyList<PlannedBatch>
    {
        public int Count => (int)order.Count;

        public PlannedBatch this[int step]
        {
            get
            {
                long u = order[step];
                int low = 0, high = groups.Count - 1;
                while (low < high)
                {
                    int mid = (low + high + 1) / 2;
                    if (groups[mid].FirstBatch <= u) low = mid;
                    else high = mid - 1;
                }
                var (group, permutation, first) = groups[low];
                long start = (u - first) * group.GlobalSize;
                var dataset = data.Datasets[group.Dataset];
                int RowAt(int i) => group.KeptRows is { } kept
                    ? kept[(int)permutation[start + i]]
                    : data.Bins.Select(group.Dataset, group.Bin, (int)permutation[start + i]);
                return new PlannedBatch(group.Dataset, group.Bin, group.GlobalSize, RowAt, group.ReplicaSize, GroupSize(dataset, RowAt(0), group.GroupSize),
                    dataset.NoInBatchNegatives, dataset.HasTeacherScores);
            }
        }

        public IEnumerator<PlannedBatch> GetEnumerator()
        {
            for (int step = 0; step < Count; step++) yield return this[step];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Bin of a row of <paramref name="length"/> tokens: the number of edges at or below it.</summary>
    public static int BinOf(int length, List<int> edges) => BinOf(length, CollectionsMarshal.AsSpan(edges));

    /// <inheritdoc cref="BinOf(int, List{int})"/>
    public static int BinOf(int length, ReadOnlySpan<int> edges)
    {
        int bin = 0;
        while (bin < edges.Length && length >= edges[bin]) bin++;
        return bin;
    }

    /// <summary>
    /// Per-replica batch size of each bin, before the symmetric-type halving: <see cref="DataConfig.BatchSizes"/>,
    /// or derived from <see cref="DataConfig.TokensPerBatch"/>. Throws on bins and sizes that do not fit together.
    /// </summary>
    public static int[] ReplicaBatchSizes(DataConfig config, RowKind kind)
    {
        var edges = config.BinEdges;
        for (int i = 0; i < edges.Count; i++)
            if (edges[i] <= 0 || (i > 0 && edges[i] <= edges[i - 1]))
                throw new M3TrainException($"data.bin_edges must be positive and increasing; got {string.Join(", ", edges)}");
        if (edges.Count > MaxBinEdges)
            throw new M3TrainException($"data.bin_edges has {edges.Count} edges; at most {MaxBinEdges} are allowed");
        int bins = edges.Count + 1;
        if (config.TokensPerBatch is int budget)
        {
            var sizes = new int[bins];
            int longest = Math.Max(config.QueryMaxLen, config.PassageMaxLen);
            for (int bin = 0; bin < bins; bin++)
            {
                int upper = bin < edges.Count ? edges[bin] : longest;
                long queryTokens = Math.Min(upper, config.QueryMaxLen), passageTokens = Math.Min(upper, config.PassageMaxLen);
                long perRow = kind == RowKind.Text ? passageTokens : queryTokens + config.TrainGroupSize * passageTokens;
                sizes[bin] = (int)Math.Max(1, budget / perRow);
            }
            return sizes;
        }
        if (config.BatchSizes.Count != bins)
            throw new M3TrainException($"data.batch_sizes has {config.BatchSizes.Count} entries but data.bin_edges makes {bins} bins; give one size per bin (or set data.tokens_per_batch)");
        if (config.BatchSizes.Any(s => s < 1))
            throw new M3TrainException($"data.batch_sizes must all be at least 1; got {string.Join(", ", config.BatchSizes)}");
        return [.. config.BatchSizes];
    }

    /// <summary>G of a batch: by the type rule of its first row, as the reference; 0 for text rows.</summary>
    static int GroupSize(TrainDataset dataset, int firstRow, int configuredGroupSize)
    {
        if (dataset.Kind == RowKind.Text) return 0;
        var info = dataset.Info(firstRow);
        return TrainGroupRules.GroupSize(info.TypeRule, info.Negatives, configuredGroupSize);
    }
}
