using System.Security.Cryptography;
using System.Text;

namespace M3Train.Data;

/// <summary>
/// The order of an epoch's batches (docs/METHOD.md, "Length bins and the batch plan"): each batch from one dataset and one length bin; rows
/// shuffled inside each (dataset, bin) and cut into global batches of (per-replica size × world size), the last
/// incomplete one dropped; then all batches shuffled. A pure function of (data, seed, epoch, world size), so every
/// replica computes the same plan and takes its own slice; it depends on the world size only through the global
/// batch size, so W replicas of B rows see exactly the batches of one replica of W·B rows.
/// </summary>
public sealed class BatchPlan
{
    BatchPlan(int epoch, IReadOnlyList<PlannedBatch> batches, int droppedRows, string signature)
    {
        Epoch = epoch;
        Batches = batches;
        DroppedRows = droppedRows;
        Signature = signature;
    }

    public int Epoch { get; }
    public IReadOnlyList<PlannedBatch> Batches { get; }
    public int Count => Batches.Count;
    /// <summary>Rows left out of this epoch because they did not fill a global batch.</summary>
    public int DroppedRows { get; }
    /// <summary>Identifies (data, seed, bins, global batch sizes, group size): equal signatures mean equal plans for every epoch.</summary>
    public string Signature { get; }

    public static BatchPlan Create(TrainData data, long seed, int epoch, int worldSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        var config = data.Config;
        var overrides = DatasetOverrides.Resolve(data);
        var signature = new StringBuilder($"{data.Fingerprint}|{seed}|{config.TrainGroupSize}|{string.Join(',', config.BinEdges)}|{overrides.Signature}");
        var batches = new List<PlannedBatch>();
        int dropped = 0;
        for (int d = 0; d < data.Datasets.Count; d++)
        {
            var dataset = data.Datasets[d];
            int[] sizes = ReplicaBatchSizes(config, dataset.Kind);
            var rowsOfBin = new List<int>[sizes.Length];
            foreach (int row in overrides.Rows(d, dataset.Count, seed))
                (rowsOfBin[BinOf(dataset.RowLength(row, config), config.BinEdges)] ??= []).Add(row);
            for (int bin = 0; bin < sizes.Length; bin++)
            {
                int replicaSize = overrides.BatchSize(d, dataset.Type, sizes[bin]);
                int globalSize = replicaSize * worldSize;
                signature.Append($"|{d}:{bin}:{globalSize}");
                if (rowsOfBin[bin] is not { } rows) continue;
                int[] order = [.. rows];
                DataRandom.For(seed, DataRandomPurpose.RowOrder, epoch, d, bin).Shuffle(order.AsSpan());
                int full = order.Length / globalSize;
                dropped += order.Length - full * globalSize;
                for (int k = 0; k < full; k++)
                {
                    int[] batchRows = order[(k * globalSize)..((k + 1) * globalSize)];
                    batches.Add(new PlannedBatch(d, bin, batchRows, replicaSize, GroupSize(dataset, batchRows[0], overrides.GroupSize(d)),
                        dataset.NoInBatchNegatives, dataset.HasTeacherScores));
                }
            }
        }
        var shuffled = batches.ToArray();
        DataRandom.For(seed, DataRandomPurpose.BatchOrder, epoch).Shuffle(shuffled.AsSpan());
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(signature.ToString())))[..16];
        return new BatchPlan(epoch, shuffled, dropped, hash);
    }

    /// <summary>Bin of a row of <paramref name="length"/> tokens: the number of edges at or below it.</summary>
    public static int BinOf(int length, IReadOnlyList<int> edges)
    {
        int bin = 0;
        while (bin < edges.Count && length >= edges[bin]) bin++;
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

    /// <summary>G of a batch: by the type rules of its first row, as the reference; 0 for text rows.</summary>
    static int GroupSize(TrainDataset dataset, int firstRow, int configuredGroupSize) =>
        dataset.Kind == RowKind.Text ? 0 : TrainGroupRules.GroupSize(dataset.TypeOf(firstRow), dataset.Info(firstRow).Negatives, configuredGroupSize);
}
