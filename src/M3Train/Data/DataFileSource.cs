using System.Security.Cryptography;
using System.Text;
using M3Train.Text;

namespace M3Train.Data;

/// <summary>
/// A training file as found at start-up, before its row index is read: its identity (size, modification time and a
/// hash of its first and last 64 KiB: cheap to take at every start, unlike hashing a file of many GB), its parts
/// (<see cref="DataConfig.IndexPartBytes"/> each) and, for Parquet, its row groups. The index of each part lives under a
/// key of that identity, the tokenizer and the settings that change what the index holds, so a changed file, tokenizer
/// or setting makes new parts for that file only.
/// </summary>
public sealed class DataFileSource
{
    const int SampleBytes = 64 << 10;
    readonly Lazy<RowKind> _kind;

    DataFileSource(string path, bool noInBatchNegatives, ParquetLayout? layout, IReadOnlyList<PartRange> parts, string fileKey, DataConfig config)
    {
        Path = path;
        NoInBatchNegatives = noInBatchNegatives;
        Layout = layout;
        Parts = parts;
        FileKey = fileKey;
        _kind = new(() => RowIndexBuilder.FirstValidKind(this, config));
    }

    public string Path { get; }
    public bool NoInBatchNegatives { get; }
    /// <summary>The row groups of a Parquet file; null for JSONL.</summary>
    public ParquetLayout? Layout { get; }
    public IReadOnlyList<PartRange> Parts { get; }
    public string FileKey { get; }
    /// <summary>The kind of the file's first valid row (found on first use, by reading rows until one is valid).</summary>
    public RowKind Kind => _kind.Value;

    public bool IsParquet => Layout is not null;

    public static bool IsParquetPath(string path) => path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase);

    /// <summary>The key that part <paramref name="part"/>'s index must carry.</summary>
    public string PartKey(int part) => $"{FileKey}/{part}";

    /// <summary>The part's index file name: the data file's name, the key's first 16 digits, the part number.</summary>
    public string PartFileName(int part) => $"{System.IO.Path.GetFileName(Path)}.{FileKey[..16]}.{part}.rows";

    /// <summary>Looks at <paramref name="path"/>: its size, time, sampled hash and (Parquet) footer. Throws <see cref="M3TrainException"/> when it cannot be read.</summary>
    public static DataFileSource Inspect(string path, bool noInBatchNegatives, XlmrTokenizer tokenizer, DataConfig config)
    {
        long size;
        DateTime modified;
        string sample;
        try
        {
            var info = new FileInfo(path);
            size = info.Length;
            modified = info.LastWriteTimeUtc;
            sample = SampleHash(path, size);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new M3TrainException($"{path}: cannot read ({e.Message})", e);
        }
        if (size > PackedRow.MaxKey)
            throw new M3TrainException($"{path}: {size} bytes, more than the {PackedRow.MaxKey + 1} a data file may hold; split it into several files");
        var layout = IsParquetPath(path) ? ParquetRowReader.ReadLayout(path) : null;
        long partBytes = config.IndexPartBytes;
        int count = (int)Math.Max(1, (size + partBytes - 1) / partBytes);
        var parts = new PartRange[count];
        int group = 0;
        for (int k = 0; k < count; k++)
        {
            long start = k * partBytes, end = Math.Min(size, start + partBytes);
            int first = group;
            if (layout is not null)
                while (group < layout.GroupRows.Length && (k == count - 1 || layout.GroupOffsets[group] < end)) group++;
            parts[k] = new PartRange(start, end, first, group - first);
        }
        string material = string.Join('\n', "m3train-row-index v1", $"{size} bytes", $"modified {modified.Ticks}", sample,
            config.IndexDir is null ? "" : System.IO.Path.GetFullPath(path),
            tokenizer.Fingerprint, config.QueryInstruction ?? "<none>", config.QueryInstructionFormat, config.UseRowPrompt ? "row-prompt" : "no-row-prompt",
            $"max-row-bytes {config.MaxRowBytes}", DatasetOverrides.GroupSizeOf(path, config) > 1 ? "groups" : "single passages", $"part-bytes {partBytes}");
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(material)));
        return new DataFileSource(path, noInBatchNegatives, layout, parts, key, config);
    }

    /// <summary>SHA-256 of the first and last 64 KiB: the whole of a small file.</summary>
    static string SampleHash(string path, long size)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[SampleBytes];
        foreach (long offset in size <= 2 * SampleBytes ? [0L, SampleBytes] : new[] { 0L, size - SampleBytes })
        {
            int read = RandomAccess.Read(handle, buffer, offset);
            hash.AppendData(buffer, 0, read);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
