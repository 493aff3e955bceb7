using System.Security.Cryptography;
using System.Text;
using M3Train.Text;

namespace M3Train.Data;

/// <summary>
/// Reads one part of a data file and writes its row index: every row validated, the tokens of its texts counted as
/// they will be encoded, a chunk of rows at a time (in parallel inside a chunk, in file order outside). Bad rows are
/// recorded, not thrown: the caller applies <c>data.on_bad_row</c>.
/// </summary>
public static class RowIndexBuilder
{
    const int RowsPerChunk = 2048;
    /// <summary>A chunk also ends at this many bytes of rows, so 2048 rows of up to <c>max_row_bytes</c> are never held at once.</summary>
    const long BytesPerChunk = 16 << 20;

    /// <summary>Indexes part <paramref name="part"/> of <paramref name="source"/> into a new file at <paramref name="path"/>.</summary>
    public static void Build(DataFileSource source, int part, XlmrTokenizer tokenizer, DataConfig config, string path)
    {
        using var writer = new RowIndexWriter(path);
        var range = source.Parts[part];
        var chunks = new ChunkIndexer(tokenizer, config, source.Kind, DatasetOverrides.GroupSizeOf(source.Path, config), writer);
        try
        {
            var (lines, firstLineOffset, hash) = source.IsParquet
                ? IndexParquet(source, range, chunks, config)
                : IndexJsonl(source.Path, range, chunks, config);
            writer.Finish(source.PartKey(part), chunks.Summary(source.Kind, lines, firstLineOffset, hash, range, source.Layout));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && !writer.Failed)
        {
            throw new M3TrainException($"{source.Path}: cannot read ({e.Message})", e);
        }
    }

    static (long Lines, long FirstLineOffset, string Hash) IndexJsonl(string path, PartRange range, ChunkIndexer chunks, DataConfig config)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        bool atLineStart = range.Start == 0 || ByteAt(file, range.Start - 1) == (byte)'\n';
        file.Position = range.Start;
        using var hashing = new RangeHashStream(file, range.End - range.Start);
        using var reader = new Utf8LineReader(hashing, leaveOpen: true, maxLineBytes: config.MaxRowBytes, skipByteOrderMark: range.Start == 0);
        // A part that starts inside a line leaves that line to the part it started in.
        long before = !atLineStart && reader.TryReadLine(out _) ? 1 : 0;
        long firstLineOffset = range.Start + reader.Position;
        var chunk = new List<(long Offset, long Line, byte[]? Bytes, string? Problem)>(RowsPerChunk);
        long chunkBytes = 0;
        void Flush()
        {
            chunks.Add(chunk.Count, i => chunk[i].Bytes is { } bytes
                ? (chunk[i].Offset, chunk[i].Line, JsonlRowParser.Parse(bytes, out var p), p)
                : (chunk[i].Offset, chunk[i].Line, null, chunk[i].Problem));
            chunk.Clear();
            chunkBytes = 0;
        }
        while (range.Start + reader.Position < range.End && reader.TryReadLine(out var line))
        {
            long offset = range.Start + reader.LineStart, number = reader.LineNumber - before;
            if (reader.LineTooLong)
                chunk.Add((offset, number, null, TooLarge(reader.LineLength, config)));
            else if (!IsBlank(line))
            {
                chunk.Add((offset, number, line.ToArray(), null));
                chunkBytes += line.Length;
            }
            if (chunk.Count == RowsPerChunk || chunkBytes >= BytesPerChunk) Flush();
        }
        Flush();
        long lines = reader.LineNumber - before;
        return (lines, firstLineOffset, hashing.FinishHash());
    }

    static byte ByteAt(FileStream file, long offset)
    {
        file.Position = offset;
        int b = file.ReadByte();
        return b < 0 ? (byte)'\n' : (byte)b;
    }

    static (long Lines, long FirstLineOffset, string Hash) IndexParquet(DataFileSource source, PartRange range, ChunkIndexer chunks, DataConfig config)
    {
        var layout = source.Layout!;
        long firstRow = layout.GroupRows.Take(range.FirstGroup).Sum(), lines = 0;
        for (int g = range.FirstGroup; g < range.FirstGroup + range.Groups; g++)
        {
            var rows = ParquetRowReader.ReadGroup(source.Path, layout, g);
            if (rows.Length != layout.GroupRows[g])
                throw new M3TrainException($"{source.Path}: row group {g} holds {rows.Length} rows but its footer says {layout.GroupRows[g]}");
            long groupStart = firstRow + lines, lineBase = lines;
            chunks.Add(rows.Length, i => rows[i].Row is { } row && RowBytes(row) is var bytes && bytes > config.MaxRowBytes
                ? (groupStart + i, lineBase + i + 1, null, TooLarge(bytes, config))
                : (groupStart + i, lineBase + i + 1, rows[i].Row, rows[i].Problem));
            lines += rows.Length;
        }
        return (lines, 0, HashRange(source.Path, range));
    }

    static string HashRange(string path, PartRange range)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        file.Position = range.Start;
        using var hashing = new RangeHashStream(file, range.End - range.Start);
        return hashing.FinishHash();
    }

    /// <summary>The kind of the first valid row of the file (<see cref="RowKind.Group"/> when none is).</summary>
    public static RowKind FirstValidKind(DataFileSource source, DataConfig config)
    {
        try
        {
            if (source.Layout is { } layout)
            {
                for (int g = 0; g < layout.GroupRows.Length; g++)
                    foreach (var (row, problem) in ParquetRowReader.ReadGroup(source.Path, layout, g))
                        if (problem is null && row!.Problem() is null && RowBytes(row) <= config.MaxRowBytes) return row.Kind;
                return RowKind.Group;
            }
            using var reader = new Utf8LineReader(File.OpenRead(source.Path), maxLineBytes: config.MaxRowBytes);
            while (reader.TryReadLine(out var line))
                if (!reader.LineTooLong && !IsBlank(line) && JsonlRowParser.Parse(line, out _) is { } row && row.Problem() is null) return row.Kind;
            return RowKind.Group;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new M3TrainException($"{source.Path}: cannot read ({e.Message})", e);
        }
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

    /// <summary>Validates and counts a chunk of rows in parallel, then records them in file order.</summary>
    sealed class ChunkIndexer(XlmrTokenizer tokenizer, DataConfig config, RowKind kind, int groupSize, RowIndexWriter writer)
    {
        readonly List<IndexedBadRow> _bad = [];
        long _total, _scored;
        string? _firstType;

        public void Add(int count, Func<int, (long Key, long Line, TrainRow? Row, string? Problem)> parse)
        {
            var examined = new (RowInfo Row, string? Type, IndexedBadRow? Bad)[count];
            ParallelWork.For(count, i => examined[i] = Examine(parse(i)));
            foreach (var (row, type, bad) in examined)
            {
                _total++;
                if (bad is { } b)
                {
                    _bad.Add(b);
                    continue;
                }
                if (writer.Count == 0) _firstType = type;
                if (row.HasScores) _scored++;
                writer.Add(row);
            }
        }

        (RowInfo, string?, IndexedBadRow?) Examine((long Key, long Line, TrainRow? Row, string? Problem) parsed)
        {
            var (key, line, row, problem) = parsed;
            problem ??= row!.Problem();
            if (problem is not null) return (default, null, new IndexedBadRow(line, problem, null));
            if (row!.Kind != kind)
                return (default, null, new IndexedBadRow(line, row.Kind == RowKind.Text
                    ? "a {\"text\"} row in a file of {\"query\", ...} rows"
                    : "a {\"query\", ...} row in a file of {\"text\"} rows", null));
            if (row.Kind == RowKind.Group && TrainRow.GroupProblem(row.Type, row.Negatives.Length, groupSize) is not null)
                return (default, null, new IndexedBadRow(line, null, row.Type));
            var (query, passage) = CountTokens(row);
            return (RowInfo.Capped(key, query, passage, row.Negatives.Length, row.PositiveScores is not null, TrainGroupRules.RuleOf(row.Type)), row.Type, null);
        }

        (int Query, int Passage) CountTokens(TrainRow row)
        {
            if (row.Kind == RowKind.Text) return (tokenizer.CountTokens(row.Text!), 0);
            int passage = 0;
            foreach (string p in row.Positives) passage = Math.Max(passage, tokenizer.CountTokens(p));
            foreach (string n in row.Negatives) passage = Math.Max(passage, tokenizer.CountTokens(n));
            return (tokenizer.CountTokens(TrainGroupSampler.QueryText(row, config)), passage);
        }

        public RowIndexSummary Summary(RowKind fileKind, long lines, long firstLineOffset, string hash, PartRange range, ParquetLayout? layout) =>
            new(fileKind, _total, lines, firstLineOffset, hash, _firstType, _scored, range.FirstGroup,
                layout is null ? [] : layout.GroupRows[range.FirstGroup..(range.FirstGroup + range.Groups)], _bad);
    }
}
