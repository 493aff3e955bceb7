using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using M3Train.Text;
using Microsoft.Win32.SafeHandles;

namespace M3Train.Data;

/// <summary>
/// One training file, read once: its valid rows' token counts and positions (<see cref="RowInfo"/>), its bad
/// rows, and a way to read any row again when a batch needs it. JSONL rows are re-read from disk by byte
/// offset (the file is streamed, never held in memory); Parquet files are held in memory once read.
/// </summary>
public sealed class DataFileIndex : IDisposable
{
    const int LinesPerChunk = 2048;

    readonly IndexedRows _rows;
    readonly Lazy<SafeFileHandle>? _jsonl;
    readonly Lazy<IReadOnlyList<(TrainRow? Row, string? Problem)>>? _parquet;

    DataFileIndex(string path, bool noInBatchNegatives, string contentHash, IndexedRows rows, bool fromCache,
        IReadOnlyList<(TrainRow?, string?)>? parquetRows = null)
    {
        Path = path;
        NoInBatchNegatives = noInBatchNegatives;
        ContentHash = contentHash;
        _rows = rows;
        FromCache = fromCache;
        if (IsParquet(path))
            _parquet = parquetRows is null ? new(() => ParquetRowReader.ReadAll(path)) : new(parquetRows);
        else
            _jsonl = new(() => File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess));
    }

    public string Path { get; }
    public bool NoInBatchNegatives { get; }
    /// <summary>SHA-256 (hex) of the file's bytes.</summary>
    public string ContentHash { get; }
    /// <summary>Whether the token counts came from the on-disk cache (no tokenizing).</summary>
    public bool FromCache { get; }
    public RowKind Kind => _rows.Kind;
    public long TotalRows => _rows.TotalRows;
    public IReadOnlyList<RowInfo> Rows => _rows.Rows;
    public IReadOnlyList<BadRow> BadRows => _rows.BadRows.Select(b => new BadRow(Location(b.Line), b.Reason)).ToList();

    public string? TypeOf(in RowInfo row) => row.TypeId < 0 ? null : _rows.Types[row.TypeId];

    /// <summary><c>file:line</c> for JSONL, <c>file: row N</c> for Parquet.</summary>
    public string Location(long line) => _parquet is null ? $"{Path}:{line}" : $"{Path}: row {line}";

    public static bool IsDataFile(string path) =>
        path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || IsParquet(path);

    static bool IsParquet(string path) => path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads a row again (thread-safe).</summary>
    public TrainRow ReadRow(in RowInfo info)
    {
        if (_parquet is not null)
            return _parquet.Value[(int)info.Key].Row ?? throw Changed(info);
        SafeFileHandle handle = _jsonl!.Value;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 14);
        try
        {
            int filled = 0;
            while (true)
            {
                int read = RandomAccess.Read(handle, buffer.AsSpan(filled), info.Key + filled);
                int newline = buffer.AsSpan(filled, read).IndexOf((byte)'\n');
                if (newline >= 0 || read == 0)
                {
                    int length = newline >= 0 ? filled + newline : filled;
                    if (length > 0 && buffer[length - 1] == (byte)'\r') length--;
                    return JsonlRowParser.Parse(buffer.AsSpan(0, length), out _) ?? throw Changed(info);
                }
                filled += read;
                if (filled == buffer.Length)
                {
                    byte[] larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    M3TrainException Changed(in RowInfo info) =>
        new($"{Location(info.Line)}: the file changed after it was read at start-up; restart the run");

    /// <summary>
    /// Reads <paramref name="path"/> once (or its cache): validates every row, counts tokens of its texts as they
    /// will be encoded. Bad rows are recorded, not thrown: the caller applies <c>data.on_bad_row</c>.
    /// </summary>
    public static DataFileIndex Build(string path, bool noInBatchNegatives, XlmrTokenizer tokenizer, DataConfig config)
    {
        string contentHash;
        try
        {
            using var stream = File.OpenRead(path);
            contentHash = Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new M3TrainException($"{path}: cannot read ({e.Message})", e);
        }
        string key = CacheKey(contentHash, tokenizer, config);
        string cacheFile = TokenCountCache.PathFor(path, key);
        if (config.CacheTokenCounts && TokenCountCache.TryRead(cacheFile, key) is { } cached)
            return new DataFileIndex(path, noInBatchNegatives, contentHash, cached, fromCache: true);
        var parquetRows = IsParquet(path) ? ParquetRowReader.ReadAll(path) : null;
        var rows = parquetRows is null ? IndexJsonl(path, tokenizer, config) : IndexParquet(parquetRows, tokenizer, config);
        if (config.CacheTokenCounts)
            TokenCountCache.Write(cacheFile, key, rows);
        return new DataFileIndex(path, noInBatchNegatives, contentHash, rows, fromCache: false, parquetRows);
    }

    static string CacheKey(string contentHash, XlmrTokenizer tokenizer, DataConfig config)
    {
        string material = string.Join('\n', "v1", contentHash, tokenizer.Fingerprint,
            config.QueryInstruction ?? "<none>", config.QueryInstructionFormat, config.UseRowPrompt ? "row-prompt" : "no-row-prompt",
            $"max-row-bytes {config.MaxRowBytes}");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(material)));
    }

    static IndexedRows IndexJsonl(string path, XlmrTokenizer tokenizer, DataConfig config)
    {
        var builder = new Builder(tokenizer, config);
        using var reader = new Utf8LineReader(File.OpenRead(path), maxLineBytes: config.MaxRowBytes);
        var chunk = new List<(long Offset, long Line, byte[]? Bytes, string? Problem)>(LinesPerChunk);
        void Flush()
        {
            builder.AddChunk(chunk.Count, i => chunk[i].Bytes is { } bytes
                ? (chunk[i].Offset, chunk[i].Line, JsonlRowParser.Parse(bytes, out var p), p)
                : (chunk[i].Offset, chunk[i].Line, null, chunk[i].Problem));
            chunk.Clear();
        }
        while (reader.TryReadLine(out var line))
        {
            if (reader.LineTooLong)
                chunk.Add((reader.LineStart, reader.LineNumber, null, TooLarge(reader.LineLength, config)));
            else if (!IsBlank(line))
                chunk.Add((reader.LineStart, reader.LineNumber, line.ToArray(), null));
            if (chunk.Count == LinesPerChunk) Flush();
        }
        Flush();
        return builder.Result();
    }

    static IndexedRows IndexParquet(IReadOnlyList<(TrainRow? Row, string? Problem)> all, XlmrTokenizer tokenizer, DataConfig config)
    {
        var builder = new Builder(tokenizer, config);
        builder.AddChunk(all.Count, i => all[i].Row is { } row && RowBytes(row) is var bytes && bytes > config.MaxRowBytes
            ? (i, i + 1, null, TooLarge(bytes, config))
            : (i, i + 1, all[i].Row, all[i].Problem));
        return builder.Result();
    }

    static string TooLarge(long bytes, DataConfig config) =>
        $"the row is {bytes} bytes, more than data.max_row_bytes {config.MaxRowBytes} (raise it if such rows are meant to be trained on)";

    static long RowBytes(TrainRow row)
    {
        long bytes = 0;
        foreach (string? text in new[] { row.Query, row.Text, row.Prompt, row.Type }.Concat(row.Positives).Concat(row.Negatives))
            if (text is not null) bytes += Encoding.UTF8.GetByteCount(text);
        return bytes;
    }

    static bool IsBlank(ReadOnlySpan<byte> line) => line.Trim(" \t\r"u8).IsEmpty;

    /// <summary>Validates and counts rows chunk by chunk (in parallel inside a chunk), keeping file order.</summary>
    sealed class Builder(XlmrTokenizer tokenizer, DataConfig config)
    {
        readonly List<RowInfo> _rows = [];
        readonly List<(long, string)> _bad = [];
        readonly List<string> _types = [];
        RowKind? _kind;
        long _total;

        public void AddChunk(int count, Func<int, (long Key, long Line, TrainRow? Row, string? Problem)> parse)
        {
            var parsed = new (long Key, long Line, TrainRow? Row, string? Problem, int Query, int Passage)[count];
            Parallel.For(0, count, i =>
            {
                var (key, line, row, problem) = parse(i);
                problem ??= row!.Problem();
                int query = 0, passage = 0;
                if (problem is null) (query, passage) = CountTokens(row!);
                parsed[i] = (key, line, row, problem, query, passage);
            });
            foreach (var (key, line, row, problem, query, passage) in parsed)
            {
                _total++;
                if (problem is not null)
                {
                    _bad.Add((line, problem));
                    continue;
                }
                _kind ??= row!.Kind;
                if (row!.Kind != _kind)
                {
                    _bad.Add((line, row.Kind == RowKind.Text
                        ? "a {\"text\"} row in a file of {\"query\", ...} rows"
                        : "a {\"query\", ...} row in a file of {\"text\"} rows"));
                    continue;
                }
                _rows.Add(new RowInfo(key, line, query, passage, row.Negatives.Length, row.PositiveScores is not null, TypeId(row.Type)));
            }
        }

        (int Query, int Passage) CountTokens(TrainRow row)
        {
            if (row.Kind == RowKind.Text) return (tokenizer.CountTokens(row.Text!), 0);
            int passage = 0;
            foreach (string p in row.Positives) passage = Math.Max(passage, tokenizer.CountTokens(p));
            foreach (string n in row.Negatives) passage = Math.Max(passage, tokenizer.CountTokens(n));
            return (tokenizer.CountTokens(TrainGroupSampler.QueryText(row, config)), passage);
        }

        short TypeId(string? type)
        {
            if (type is null) return -1;
            int id = _types.IndexOf(type);
            if (id < 0)
            {
                _types.Add(type);
                id = _types.Count - 1;
            }
            return (short)id;
        }

        public IndexedRows Result() => new(_kind ?? RowKind.Group, _total, _types, [.. _rows], _bad);
    }

    public void Dispose()
    {
        if (_jsonl is { IsValueCreated: true }) _jsonl.Value.Dispose();
    }
}
