using System.Buffers.Binary;
using System.IO.Hashing;
using System.IO.MemoryMappedFiles;
using System.Text;
using Serilog;

namespace M3Train.Data;

/// <summary>
/// One part of a data file's row index, memory-mapped: the <see cref="PackedRow"/> records of the valid rows whose
/// lines start in one byte range of the file, then what the part says about that range (<see cref="RowIndexSummary"/>).
/// Every process that trains on the file maps the same part files, so its rows take page cache once per machine
/// instead of memory in each process.
/// <code>
/// [records: Count × 12 bytes][summary][footer: "M3ROWIDX", version, record bytes, Count, summary bytes][XXH128 of everything before]
/// </code>
/// A part is an untrusted file: it is read only if its checksum matches (a damaged part is rebuilt, with a warning),
/// its sizes add up to the file's length, and every count and string in its summary fits in what is left of it.
/// Parts are only ever replaced by renaming a new file over them, so a mapped part never changes underneath.
/// </summary>
public sealed unsafe class RowIndexPart : IDisposable
{
    public const int FooterBytes = 32;
    const int ChecksumBytes = 16;
    const int Version = 1;
    static ReadOnlySpan<byte> Magic => "M3ROWIDX"u8;

    readonly MemoryMappedViewAccessor? _view;
    readonly byte* _records;
    bool _disposed;

    RowIndexPart(string path, long count, long fileBytes, RowIndexSummary summary, MemoryMappedViewAccessor? view, bool builtHere)
    {
        Path = path;
        BuiltHere = builtHere;
        Count = count;
        FileBytes = fileBytes;
        Summary = summary;
        _view = view;
        if (view is null) return;
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        _records = start + view.PointerOffset;
    }

    public string Path { get; }
    /// <summary>Valid rows in the part.</summary>
    public long Count { get; }
    /// <summary>Size of the part file: what the part costs on disk and in page cache.</summary>
    public long FileBytes { get; }
    public RowIndexSummary Summary { get; }
    /// <summary>Whether this process built the part (rather than finding it built).</summary>
    public bool BuiltHere { get; }

    public RowInfo this[long row] => PackedRow.Read(Records(row, 1));

    /// <summary>The packed records of rows [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>).</summary>
    public ReadOnlySpan<byte> Records(long start, int count)
    {
        if (start < 0 || count < 0 || start > Count - count) throw new ArgumentOutOfRangeException(nameof(start), $"rows {start}..{start + count} of a part of {Count}");
        return new ReadOnlySpan<byte>(_records + start * PackedRow.Bytes, count * PackedRow.Bytes);
    }

    internal static void WriteFooter(Span<byte> footer, long count, long summaryBytes)
    {
        Magic.CopyTo(footer);
        BinaryPrimitives.WriteInt32LittleEndian(footer[8..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(footer[12..], PackedRow.Bytes);
        BinaryPrimitives.WriteInt64LittleEndian(footer[16..], count);
        BinaryPrimitives.WriteInt64LittleEndian(footer[24..], summaryBytes);
    }

    /// <summary>
    /// The part at <paramref name="path"/> under <paramref name="key"/>, mapped; null when there is none to use:
    /// missing, of another format or key (a normal miss), or damaged (logged). The caller then builds it.
    /// </summary>
    public static RowIndexPart? TryOpen(string path, string key, bool builtHere = false)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return Open(path, key, builtHere);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or UnauthorizedAccessException)
        {
            Log.Warning("Row index part {Part} is unusable ({Reason}); that part of the data file is read again and the part rebuilt", path, e.Message);
            return null;
        }
    }

    static RowIndexPart? Open(string path, string key, bool builtHere)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 1 << 20, FileOptions.SequentialScan);
        try
        {
            long length = stream.Length;
            if (length < FooterBytes + ChecksumBytes) throw new InvalidDataException($"{length} bytes, shorter than its footer and checksum");
            Span<byte> footer = stackalloc byte[FooterBytes];
            stream.Position = length - FooterBytes - ChecksumBytes;
            stream.ReadExactly(footer);
            if (!footer[..8].SequenceEqual(Magic)) throw new InvalidDataException("it does not end with a row index footer");
            if (BinaryPrimitives.ReadInt32LittleEndian(footer[8..]) != Version) return null;
            int recordBytes = BinaryPrimitives.ReadInt32LittleEndian(footer[12..]);
            long count = BinaryPrimitives.ReadInt64LittleEndian(footer[16..]), summaryBytes = BinaryPrimitives.ReadInt64LittleEndian(footer[24..]);
            long body = length - FooterBytes - ChecksumBytes;
            if (recordBytes != PackedRow.Bytes || count < 0 || summaryBytes < 0 || count > body / PackedRow.Bytes || count * PackedRow.Bytes + summaryBytes != body)
                throw new InvalidDataException($"{count} records of {recordBytes} bytes and a {summaryBytes}-byte summary do not make its {length} bytes");
            VerifyChecksum(stream, length);
            stream.Position = count * PackedRow.Bytes;
            var summary = ReadSummary(stream, summaryBytes, key, count);
            if (summary is null) return null;
            MemoryMappedViewAccessor? view = null;
            if (count > 0)
            {
                using var map = MemoryMappedFile.CreateFromFile(stream, mapName: null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
                view = map.CreateViewAccessor(0, count * PackedRow.Bytes, MemoryMappedFileAccess.Read);
            }
            return new RowIndexPart(path, count, length, summary, view, builtHere);
        }
        finally
        {
            stream.Dispose();
        }
    }

    static void VerifyChecksum(FileStream stream, long length)
    {
        var hash = new XxHash128();
        byte[] buffer = new byte[1 << 20];
        stream.Position = 0;
        for (long left = length - ChecksumBytes; left > 0;)
        {
            int read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (read == 0) throw new EndOfStreamException();
            hash.Append(buffer.AsSpan(0, read));
            left -= read;
        }
        Span<byte> stored = stackalloc byte[ChecksumBytes];
        stream.ReadExactly(stored);
        if (!hash.GetCurrentHash().AsSpan().SequenceEqual(stored)) throw new InvalidDataException("its checksum does not match its contents");
    }

    /// <summary>The summary, or null for a part of another key (a normal miss).</summary>
    static RowIndexSummary? ReadSummary(FileStream stream, long summaryBytes, string key, long count)
    {
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        var r = new Bounded(reader, stream.Position + summaryBytes);
        if (r.String() != key) return null;
        byte kind = reader.ReadByte();
        if (!Enum.IsDefined((RowKind)kind)) throw new InvalidDataException($"row kind {kind}");
        long total = reader.ReadInt64(), lines = reader.ReadInt64(), firstLineOffset = reader.ReadInt64();
        string contentHash = r.String();
        string? firstType = r.Optional();
        long scored = reader.ReadInt64();
        int firstGroup = reader.ReadInt32();
        var groupRows = new long[r.Count(8)];
        for (int i = 0; i < groupRows.Length; i++) groupRows[i] = reader.ReadInt64();
        var bad = new IndexedBadRow[r.Count(10)];
        for (int i = 0; i < bad.Length; i++) bad[i] = new IndexedBadRow(reader.ReadInt64(), r.Optional(), r.Optional());
        if (stream.Position != r.End) throw new InvalidDataException("bytes after the summary");
        if (total != count + bad.Length) throw new InvalidDataException($"{total} rows in all, but {count} good and {bad.Length} bad");
        if (lines < total || firstLineOffset < 0 || scored < 0 || scored > count || firstGroup < 0 || groupRows.Any(g => g < 0))
            throw new InvalidDataException("a count in its summary is out of range");
        if (groupRows.Length > 0 && groupRows.Sum() != lines) throw new InvalidDataException($"its row groups hold {groupRows.Sum()} rows, not {lines}");
        if (bad.Any(b => b.Line < 1 || b.Line > lines || (b.Reason is not null && b.GroupType is not null)))
            throw new InvalidDataException("a bad row is out of range");
        if (contentHash.Length != 64 || !contentHash.All(char.IsAsciiHexDigitLower)) throw new InvalidDataException("its content hash is not a SHA-256");
        return new RowIndexSummary((RowKind)kind, total, lines, firstLineOffset, contentHash, firstType, scored, firstGroup, groupRows, bad);
    }

    /// <summary>Reads counts and strings no larger than what is left of the summary, so a damaged length cannot allocate gigabytes.</summary>
    sealed class Bounded(BinaryReader reader, long end)
    {
        static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

        public long End => end;

        long Left => end - reader.BaseStream.Position;

        public int Count(int bytesEach)
        {
            int n = reader.ReadInt32();
            if (n < 0 || n > Left / bytesEach) throw new InvalidDataException($"a count of {n} records does not fit in what is left of the file");
            return n;
        }

        public string? Optional() => reader.ReadBoolean() ? String() : null;

        public string String()
        {
            int length = reader.Read7BitEncodedInt();
            if (length < 0 || length > Left) throw new InvalidDataException($"a {length}-byte string does not fit in what is left of the file");
            try
            {
                return StrictUtf8.GetString(reader.ReadBytes(length));
            }
            catch (ArgumentException)
            {
                throw new InvalidDataException("a string is not valid UTF-8");
            }
        }
    }

    public void Dispose()
    {
        if (_view is null || _disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
    }
}
