using System.Buffers;
using System.Collections;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace M3Train.Data;

/// <summary>
/// One training file and its row index (<see cref="RowIndexPart"/>s, memory-mapped): its valid rows' token counts
/// and positions (<see cref="RowInfo"/>), its bad rows, and a way to read any row again when a batch needs it.
/// Nothing of the file is held in memory: JSONL rows are read again by byte offset, Parquet rows by decoding their
/// row group when a batch needs them (the last few groups are kept, so a batch decodes each group it touches once).
/// </summary>
public sealed class DataFileIndex : IDisposable
{
    /// <summary>
    /// Decoded Parquet row groups kept per file: a small file's groups are decoded once for the run; in a large file a
    /// batch's rows mostly fall in different groups, and more kept groups would only hold more memory.
    /// </summary>
    const int CachedGroups = 2;

    readonly RowIndexPart[] _parts;
    readonly long[] _rowStarts, _lineStarts;
    readonly int _groupSize;
    readonly Lazy<SafeFileHandle>? _jsonl;
    readonly long[]? _groupStarts;
    readonly ParquetLayout? _layout;
    readonly LinkedList<(int Group, Lazy<(TrainRow? Row, string? Problem)[]> Rows)> _groups = new();

    /// <param name="source">The file as found at start-up.</param>
    /// <param name="parts">Its row index, one mapped part per <see cref="DataFileSource.Parts"/> entry (this index owns them).</param>
    /// <param name="groupSize">The run's <c>train_group_size</c>, to describe rows whose negatives cannot fill a group.</param>
    public DataFileIndex(DataFileSource source, RowIndexPart[] parts, int groupSize)
    {
        Path = source.Path;
        NoInBatchNegatives = source.NoInBatchNegatives;
        _parts = parts;
        _groupSize = groupSize;
        _layout = source.Layout;
        _rowStarts = Starts(parts.Select(p => p.Count));
        _lineStarts = Starts(parts.Select(p => p.Summary.Lines));
        var kinds = parts.Select(p => p.Summary.Kind).Distinct().ToList();
        if (kinds.Count > 1) throw new M3TrainException($"{Path}: its row index parts disagree on the kind of its rows; delete {RowIndexStore.FolderName}/{System.IO.Path.GetFileName(Path)}.* and run again");
        Kind = kinds.Single();
        if (_rowStarts[^1] > int.MaxValue)
            throw new M3TrainException($"{Path}: {_rowStarts[^1]} valid rows, more than the {int.MaxValue} one dataset may hold; split it into several files");
        ContentHash = parts.Length == 1
            ? parts[0].Summary.ContentHash
            : Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(string.Join('\n', parts.Select(p => p.Summary.ContentHash)))));
        FirstType = parts.FirstOrDefault(p => p.Count > 0)?.Summary.FirstType;
        if (source.IsParquet)
        {
            _groupStarts = Starts(parts.SelectMany(p => p.Summary.GroupRows));
            if (_groupStarts.Length - 1 != source.Layout!.GroupRows.Length)
                throw new M3TrainException($"{Path}: its row index covers {_groupStarts.Length - 1} row groups but the file has {source.Layout.GroupRows.Length}; delete {RowIndexStore.FolderName}/{System.IO.Path.GetFileName(Path)}.* and run again");
        }
        else
        {
            _jsonl = new(() => File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess));
        }
    }

    static long[] Starts(IEnumerable<long> counts)
    {
        var starts = new List<long> { 0 };
        foreach (long c in counts) starts.Add(starts[^1] + c);
        return [.. starts];
    }

    public string Path { get; }
    public bool NoInBatchNegatives { get; }
    /// <summary>SHA-256 (hex) of the file's bytes; for a file of several parts, of its parts' hashes.</summary>
    public string ContentHash { get; }
    /// <summary>Whether every part of the index was found built (no tokenizing here).</summary>
    public bool FromCache => _parts.All(p => !p.BuiltHere);
    /// <summary>Parts of the index this process built.</summary>
    public int PartsBuilt => _parts.Count(p => p.BuiltHere);
    public IReadOnlyList<RowIndexPart> Parts => _parts;
    /// <summary>Bytes of the row index on disk (and in page cache once read).</summary>
    public long IndexBytes => _parts.Sum(p => p.FileBytes);
    public RowKind Kind { get; }
    /// <summary>The <c>type</c> of the first valid row.</summary>
    public string? FirstType { get; }
    /// <summary>Non-blank rows read, valid or not.</summary>
    public long TotalRows => _parts.Sum(p => p.Summary.TotalRows);
    /// <summary>Valid rows with teacher scores.</summary>
    public long ScoredRows => _parts.Sum(p => p.Summary.ScoredRows);
    /// <summary>Valid rows.</summary>
    public int RowCount => (int)_rowStarts[^1];
    /// <summary>The valid rows in file order, read from the index as they are asked for.</summary>
    public IReadOnlyList<RowInfo> Rows => new RowList(this);
    /// <summary>Rows that cannot be trained on, in file order.</summary>
    public IReadOnlyList<BadRow> BadRows =>
        _parts.SelectMany((p, k) => p.Summary.BadRows.Select(b => new BadRow(Location(_lineStarts[k] + b.Line), b.Describe(_groupSize)))).ToList();

    public RowInfo Row(int row)
    {
        var (part, local) = Locate(row);
        return part[local];
    }

    /// <summary>The part holding <paramref name="row"/> and the row's place in it.</summary>
    internal (RowIndexPart Part, long Local) Locate(int row)
    {
        int k = PartOf(row);
        return (_parts[k], row - _rowStarts[k]);
    }

    int PartOf(int row)
    {
        if ((uint)row >= (uint)RowCount) throw new ArgumentOutOfRangeException(nameof(row), $"row {row} of {RowCount}");
        return RangeStarts.Find<long>(_rowStarts, row);
    }

    /// <summary><c>file:line</c> for JSONL, <c>file: row N</c> for Parquet.</summary>
    public string Location(long line) => _layout is null ? $"{Path}:{line}" : $"{Path}: row {line}";

    public static bool IsDataFile(string path) =>
        path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || DataFileSource.IsParquetPath(path);

    /// <summary>Reads a row again (thread-safe).</summary>
    public TrainRow ReadRow(in RowInfo info) => _layout is null ? ReadLine(info.Key) : ReadParquetRow(info.Key);

    /// <summary>
    /// Reads several rows again: JSONL lines in parallel; Parquet rows a row group at a time, each group they fall in
    /// decoded once and dropped once its rows are taken, so a batch holds one decoded group at a time however many it touches.
    /// </summary>
    public TrainRow[] ReadRows(IReadOnlyList<RowInfo> rows)
    {
        var read = new TrainRow[rows.Count];
        if (_layout is null)
        {
            ParallelWork.For(rows.Count, i => read[i] = ReadLine(rows[i].Key));
            return read;
        }
        foreach (var group in Enumerable.Range(0, rows.Count).GroupBy(i => GroupOf(rows[i].Key)))
        {
            var decoded = DecodedGroup(group.Key);
            foreach (int i in group) read[i] = ParquetRow(decoded, group.Key, rows[i].Key);
        }
        return read;
    }

    TrainRow ReadLine(long offset)
    {
        SafeFileHandle handle = _jsonl!.Value;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 14);
        try
        {
            int filled = 0;
            while (true)
            {
                int read = RandomAccess.Read(handle, buffer.AsSpan(filled), offset + filled);
                int newline = buffer.AsSpan(filled, read).IndexOf((byte)'\n');
                if (newline >= 0 || read == 0)
                {
                    int length = newline >= 0 ? filled + newline : filled;
                    if (length > 0 && buffer[length - 1] == (byte)'\r') length--;
                    if (length == 0 && read == 0) throw Changed(offset);
                    return JsonlRowParser.Parse(buffer.AsSpan(0, length), out _) ?? throw Changed(offset);
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

    TrainRow ReadParquetRow(long row)
    {
        int group = GroupOf(row);
        return ParquetRow(DecodedGroup(group), group, row);
    }

    int GroupOf(long row)
    {
        int g = RangeStarts.Find<long>(_groupStarts!, row);
        if (g < 0 || g >= _groupStarts!.Length - 1) throw Changed(row);
        return g;
    }

    TrainRow ParquetRow((TrainRow? Row, string? Problem)[] decoded, int group, long row)
    {
        long local = row - _groupStarts![group];
        return local < decoded.Length && decoded[local].Row is { } read ? read : throw Changed(row);
    }

    (TrainRow? Row, string? Problem)[] DecodedGroup(int group)
    {
        Lazy<(TrainRow?, string?)[]> rows;
        lock (_groups)
        {
            var node = _groups.First;
            while (node is not null && node.Value.Group != group) node = node.Next;
            if (node is null)
            {
                node = new LinkedListNode<(int, Lazy<(TrainRow?, string?)[]>)>((group, new(() => ParquetRowReader.ReadGroup(Path, _layout!, group))));
                if (_groups.Count == CachedGroups) _groups.RemoveLast();
            }
            else
            {
                _groups.Remove(node);
            }
            _groups.AddFirst(node);
            rows = node.Value.Rows;
        }
        var decoded = rows.Value;
        if (decoded.Length != _groupStarts![group + 1] - _groupStarts[group])
            throw new M3TrainException($"{Path}: row group {group} now holds {decoded.Length} rows, not the {_groupStarts[group + 1] - _groupStarts[group]} it held at start-up; the file changed, restart the run");
        return decoded;
    }

    M3TrainException Changed(long key) =>
        new($"{Location(LineOf(key))}: the file changed after it was read at start-up; restart the run");

    /// <summary>The line (JSONL: counted from the part's first line) or row number of the row at <paramref name="key"/>, for messages.</summary>
    long LineOf(long key)
    {
        if (_layout is not null) return key + 1;
        int k = _parts.Length - 1;
        while (k > 0 && _parts[k].Summary.FirstLineOffset > key) k--;
        long line = _lineStarts[k] + 1;
        try
        {
            using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            stream.Position = _parts[k].Summary.FirstLineOffset;
            var buffer = new byte[1 << 16];
            for (long left = key - stream.Position; left > 0;)
            {
                int read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (read == 0) break;
                line += buffer.AsSpan(0, read).Count((byte)'\n');
                left -= read;
            }
        }
        catch (IOException)
        {
            // Only a message needs the line: it then names the first line of the row's part.
        }
        return line;
    }

    public void Dispose()
    {
        foreach (var part in _parts) part.Dispose();
        if (_jsonl is { IsValueCreated: true }) _jsonl.Value.Dispose();
    }

    /// <summary>The valid rows as a list, decoded from the index on each access.</summary>
    sealed class RowList(DataFileIndex file) : IReadOnlyList<RowInfo>
    {
        public RowInfo this[int index] => file.Row(index);
        public int Count => file.RowCount;

        public IEnumerator<RowInfo> GetEnumerator()
        {
            for (int k = 0; k < file._parts.Length; k++)
                for (long i = 0; i < file._parts[k].Count; i++)
                    yield return file._parts[k][i];
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
