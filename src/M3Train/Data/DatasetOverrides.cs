namespace M3Train.Data;

/// <summary>
/// The per-dataset settings that differ from the run-wide ones, resolved once per plan: the batch size and group size
/// of <see cref="DataConfig.DatasetOverrides"/>, and the rows that <see cref="DataConfig.MaxExamplesPerDataset"/> keeps.
/// The batch plan asks this for every dataset instead of reading <see cref="DataConfig.BatchSizes"/> and
/// <see cref="DataConfig.TrainGroupSize"/> directly.
/// </summary>
public sealed class DatasetOverrides
{
    readonly DataConfig _config;
    readonly DatasetOverride?[] _entries;

    DatasetOverrides(DataConfig config, DatasetOverride?[] entries)
    {
        _config = config;
        _entries = entries;
    }

    /// <summary>
    /// The settings of each dataset of <paramref name="data"/>: the first entry that covers the dataset's first file.
    /// An entry that covers no file is an error (a mistyped path would otherwise be ignored).
    /// </summary>
    public static DatasetOverrides Resolve(TrainData data)
    {
        var config = data.Config;
        var files = data.Files.Select(f => f.Path).ToList();
        foreach (var entry in config.DatasetOverrides)
            if (!files.Any(entry.Covers))
                throw new M3TrainException($"data.dataset_overrides: {entry.Path} is none of the data files nor a folder holding one; " +
                                           "give a path as data.files names it.");
        var entries = data.Datasets.Select(d => EntryFor(d.Files[0].Path, config)).ToArray();
        return new DatasetOverrides(config, entries);
    }

    /// <summary>Passages per query of a file's rows before the <c>type</c> rules: its override's, else <c>data.train_group_size</c>.</summary>
    public static int GroupSizeOf(string file, DataConfig config) => EntryFor(file, config)?.TrainGroupSize ?? config.TrainGroupSize;

    static DatasetOverride? EntryFor(string file, DataConfig config) => config.DatasetOverrides.FirstOrDefault(e => e.Covers(file));

    /// <summary>Per-replica batch size of dataset <paramref name="d"/> in a bin of <paramref name="binBatchSize"/>: its override's, else the type rules'.</summary>
    public int BatchSize(int d, string? type, int binBatchSize) =>
        _entries[d]?.BatchSize ?? TrainGroupRules.BatchSize(type, binBatchSize);

    /// <summary>Passages per query of dataset <paramref name="d"/> before the <c>type</c> rules.</summary>
    public int GroupSize(int d) => _entries[d]?.TrainGroupSize ?? _config.TrainGroupSize;

    /// <summary>What the plan's signature must cover beyond the run-wide settings.</summary>
    public string Signature => string.Join(';', _entries.Select(e => e is null ? "-" : $"{e.BatchSize}/{e.TrainGroupSize}")) + $"|max {_config.MaxExamplesPerDataset}";

    /// <summary>
    /// The rows of dataset <paramref name="d"/> (of <paramref name="count"/>) that train when
    /// <see cref="DataConfig.MaxExamplesPerDataset"/> keeps only some, in file order; null when all rows train. The
    /// sample is drawn once per run from the seed (the same in every epoch and on every replica): by a partial
    /// Fisher-Yates shuffle of all row numbers for a plan shuffled in memory, by the first rows of a seeded
    /// permutation for a <paramref name="permuted"/> plan, which needs memory only for the rows it keeps.
    /// </summary>
    public int[]? KeptRows(int d, int count, long seed, bool permuted)
    {
        if (_config.MaxExamplesPerDataset is not int max || count <= max) return null;
        var random = DataRandom.For(seed, DataRandomPurpose.DatasetSample, d);
        int[] kept;
        if (permuted)
        {
            var permutation = new FeistelPermutation(count, random);
            kept = new int[max];
            for (int i = 0; i < max; i++) kept[i] = (int)permutation[i];
        }
        else
        {
            int[] all = Enumerable.Range(0, count).ToArray();
            for (int i = 0; i < max; i++)
            {
                int j = i + random.NextInt(count - i);
                (all[i], all[j]) = (all[j], all[i]);
            }
            kept = all[..max];
        }
        Array.Sort(kept);
        return kept;
    }
}
