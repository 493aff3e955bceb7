using System.Security.Cryptography;
using System.Text;
using M3Train.Text;
using Serilog;

namespace M3Train.Data;

/// <summary>
/// The training data of a run: the files of <see cref="DataConfig.Files"/> read once (token counts from the
/// cache beside them when present), bad rows handled by <see cref="DataConfig.OnBadRow"/>, small files merged
/// or dropped, as datasets in a fixed order. Everything the batch plan needs is here, without the texts.
/// </summary>
public sealed class TrainData : IDisposable
{
    const string NoInBatchNegativesSuffix = "no_in_batch_neg";

    TrainData(DataConfig config, IReadOnlyList<DataFileIndex> files, IReadOnlyList<TrainDataset> datasets,
        IReadOnlyDictionary<string, IReadOnlyList<BadRow>> skippedRows)
    {
        Config = config;
        SkippedRows = skippedRows;
        Files = files;
        Datasets = datasets;
        var material = new StringBuilder();
        foreach (var d in datasets)
        {
            material.Append(d.Name).Append('|').Append(d.Count);
            foreach (var f in d.Files) material.Append('|').Append(f.ContentHash);
            material.Append('\n');
        }
        Fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(material.ToString())))[..16];
    }

    public DataConfig Config { get; }
    /// <summary>Every file read, including those of dropped datasets.</summary>
    public IReadOnlyList<DataFileIndex> Files { get; }
    public IReadOnlyList<TrainDataset> Datasets { get; }
    /// <summary>Rows left out under <c>on_bad_row: skip</c>, by file path (files without bad rows are absent).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<BadRow>> SkippedRows { get; }

    /// <summary>Identifies the datasets' contents: a resumed run checks it against its saved position.</summary>
    public string Fingerprint { get; }

    /// <summary>Reads and checks the data of <paramref name="config"/>; throws <see cref="M3TrainException"/> on bad input under <c>on_bad_row: error</c>.</summary>
    public static TrainData Load(DataConfig config, XlmrTokenizer tokenizer)
    {
        var found = Discover(config.Files);
        var files = new List<DataFileIndex>();
        try
        {
            var accepted = new List<(DataFileIndex File, List<RowInfo> Rows)>();
            var skipped = new Dictionary<string, IReadOnlyList<BadRow>>();
            foreach (var (path, noInBatch) in found)
            {
                var file = DataFileIndex.Build(path, noInBatch, tokenizer, config);
                files.Add(file);
                var (good, bad) = ApplyBadRowPolicy(file, config);
                accepted.Add((file, good));
                if (bad.Count > 0) skipped[file.Path] = bad;
            }
            var datasets = FormDatasets(accepted, config);
            if (datasets.Count == 0)
                throw new M3TrainException("data.files: no dataset left after dropping small ones (see data.drop_dataset_rows)");
            foreach (var d in datasets)
                Log.Information("Dataset {Name}: {Rows} rows{Kept}, {Kind}{NoInBatch}{Scores}{Type}", d.Name, d.Count,
                    config.MaxExamplesPerDataset is int max && d.Count > max ? $" ({max} of them train: data.max_examples_per_dataset)" : "", d.Kind,
                    d.NoInBatchNegatives ? ", no in-batch negatives" : "", d.HasTeacherScores ? ", teacher scores" : "",
                    d.Type is null ? "" : $", type {d.Type}");
            int cached = files.Count(f => f.FromCache);
            Log.Information("Read {Files} data files ({Cached} token counts from cache), {Datasets} datasets", files.Count, cached, datasets.Count);
            return new TrainData(config, files, datasets, skipped);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Data files in a fixed order, with their no-in-batch-negatives flag.</summary>
    static List<(string Path, bool NoInBatchNegatives)> Discover(IReadOnlyList<string> entries)
    {
        if (entries.Count == 0) throw new M3TrainException("data.files is empty: name at least one JSONL or Parquet file or folder");
        var found = new List<(string, bool)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string entry in entries)
        {
            string full = Path.GetFullPath(entry);
            if (Directory.Exists(full))
            {
                var inFolder = Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories)
                    .Where(f => DataFileIndex.IsDataFile(f) && !f.Contains($"{Path.DirectorySeparatorChar}{TokenCountCache.FolderName}{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal)
                    .ToList();
                if (inFolder.Count == 0) throw new M3TrainException($"data.files: {entry} holds no .jsonl, .json or .parquet file");
                foreach (string f in inFolder)
                    if (seen.Add(f)) found.Add((f, MarksNoInBatchNegatives(f, full)));
            }
            else if (File.Exists(full))
            {
                if (!DataFileIndex.IsDataFile(full)) throw new M3TrainException($"data.files: {entry} is not a .jsonl, .json or .parquet file");
                if (seen.Add(full)) found.Add((full, MarksNoInBatchNegatives(full, Path.GetDirectoryName(full)!)));
            }
            else
            {
                throw new M3TrainException($"data.files: {entry} does not exist");
            }
        }
        return found;
    }

    /// <summary>The file's own name or a folder from <paramref name="root"/> down to it ends in "no_in_batch_neg".</summary>
    static bool MarksNoInBatchNegatives(string file, string root)
    {
        if (Path.GetFileNameWithoutExtension(file).EndsWith(NoInBatchNegativesSuffix, StringComparison.Ordinal)) return true;
        for (string? dir = Path.GetDirectoryName(file); dir is not null && dir.Length >= root.Length; dir = Path.GetDirectoryName(dir))
            if (Path.GetFileName(dir).EndsWith(NoInBatchNegativesSuffix, StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>The rows that train; throws on the first bad row under error, logs each under skip.</summary>
    static (List<RowInfo> Good, List<BadRow> Bad) ApplyBadRowPolicy(DataFileIndex file, DataConfig config)
    {
        var bad = file.BadRows.ToList();
        var good = new List<RowInfo>(file.Rows.Count);
        foreach (var row in file.Rows)
        {
            string? problem = file.Kind == RowKind.Group ? TrainRow.GroupProblem(file.TypeOf(row), row.Negatives, DatasetOverrides.GroupSizeOf(file.Path, config)) : null;
            if (problem is null) good.Add(row);
            else bad.Add(new BadRow(file.Location(row.Line), problem));
        }
        if (bad.Count > 0 && config.OnBadRow == BadRowPolicy.Error)
        {
            string more = bad.Count > 1 ? $" ({bad.Count - 1} more bad rows in this file)" : "";
            throw new M3TrainException($"{bad[0]}{more}; fix the data, or set data.on_bad_row: skip to leave bad rows out");
        }
        foreach (var b in bad) Log.Warning("Skipping bad row {Location}: {Reason}", b.Location, b.Reason);
        if (bad.Count > 0) Log.Warning("{File}: skipped {Skipped} of {Total} rows (data.on_bad_row: skip)", file.Path, bad.Count, file.TotalRows);
        if (file.TotalRows == 0) throw new M3TrainException($"{file.Path}: holds no rows");
        if (good.Count == 0) throw new M3TrainException($"{file.Path}: no rows left after skipping {bad.Count} bad rows");
        return (good, bad);
    }

    /// <summary>One dataset per file, except small files (fewer rows than data.small_dataset_rows), merged per folder.</summary>
    static List<TrainDataset> FormDatasets(List<(DataFileIndex File, List<RowInfo> Rows)> files, DataConfig config)
    {
        var datasets = new List<TrainDataset>();
        var merged = new HashSet<DataFileIndex>();
        foreach (var (file, rows) in files)
        {
            if (merged.Contains(file)) continue;
            if (rows.Count >= config.SmallDatasetRows)
            {
                datasets.Add(new TrainDataset(file.Path, rows.Select(r => (file, r)).ToList()));
                continue;
            }
            string folder = Path.GetDirectoryName(file.Path)!;
            var members = files.Where(f => f.Rows.Count < config.SmallDatasetRows && Path.GetDirectoryName(f.File.Path) == folder
                                           && f.File.Kind == file.Kind && f.File.NoInBatchNegatives == file.NoInBatchNegatives).ToList();
            foreach (var m in members) merged.Add(m.File);
            var rowsOfAll = members.SelectMany(m => m.Rows.Select(r => (m.File, r))).ToList();
            string name = members.Count == 1 ? file.Path : $"{folder}{Path.DirectorySeparatorChar} ({members.Count} small files merged)";
            if (rowsOfAll.Count < config.DropDatasetRows)
            {
                Log.Warning("Dropping small dataset {Name}: {Rows} rows < data.drop_dataset_rows {Threshold}", name, rowsOfAll.Count, config.DropDatasetRows);
                continue;
            }
            datasets.Add(new TrainDataset(name, rowsOfAll));
        }
        return datasets;
    }

    public void Dispose()
    {
        foreach (var f in Files) f.Dispose();
    }
}
