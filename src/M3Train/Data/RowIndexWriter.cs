using System.IO.Hashing;
using System.Text;

namespace M3Train.Data;

/// <summary>
/// Writes one part of a row index (layout in <see cref="RowIndexPart"/>) front to back, hashing as it goes, so a
/// part of any size is written through a fixed buffer.
/// </summary>
public sealed class RowIndexWriter : IDisposable
{
    readonly FileStream _file;
    readonly XxHash128 _hash = new();
    readonly byte[] _buffer = new byte[PackedRow.Bytes * 8192];
    int _filled;

    public RowIndexWriter(string path) =>
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.SequentialScan);

    public long Count { get; private set; }

    /// <summary>Whether writing failed (a full disk): the caller tells it apart from failing to read the data file.</summary>
    public bool Failed { get; private set; }

    public void Add(in RowInfo row)
    {
        PackedRow.Write(_buffer.AsSpan(_filled, PackedRow.Bytes), row);
        _filled += PackedRow.Bytes;
        Count++;
        if (_filled == _buffer.Length) Flush();
    }

    void Flush()
    {
        Append(_buffer.AsSpan(0, _filled));
        _filled = 0;
    }

    void Append(ReadOnlySpan<byte> bytes)
    {
        _hash.Append(bytes);
        Write(bytes);
    }

    void Write(ReadOnlySpan<byte> bytes)
    {
        try
        {
            _file.Write(bytes);
        }
        catch (IOException)
        {
            Failed = true;
            throw;
        }
    }

    /// <summary>Writes the summary, the footer and the checksum, and flushes the file to disk.</summary>
    public void Finish(string key, RowIndexSummary summary)
    {
        Flush();
        var metadata = new MemoryStream();
        using (var w = new BinaryWriter(metadata, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(key);
            w.Write((byte)summary.Kind);
            w.Write(summary.TotalRows);
            w.Write(summary.Lines);
            w.Write(summary.FirstLineOffset);
            w.Write(summary.ContentHash);
            WriteOptional(w, summary.FirstType);
            w.Write(summary.ScoredRows);
            w.Write(summary.FirstGroup);
            w.Write(summary.GroupRows.Length);
            foreach (long rows in summary.GroupRows) w.Write(rows);
            w.Write(summary.BadRows.Count);
            foreach (var bad in summary.BadRows)
            {
                w.Write(bad.Line);
                WriteOptional(w, bad.Reason);
                WriteOptional(w, bad.GroupType);
            }
        }
        Append(metadata.GetBuffer().AsSpan(0, (int)metadata.Length));
        Span<byte> footer = stackalloc byte[RowIndexPart.FooterBytes];
        RowIndexPart.WriteFooter(footer, Count, metadata.Length);
        Append(footer);
        Write(_hash.GetCurrentHash());
        try
        {
            _file.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            Failed = true;
            throw;
        }
    }

    static void WriteOptional(BinaryWriter w, string? text)
    {
        w.Write(text is not null);
        if (text is not null) w.Write(text);
    }

    public void Dispose() => _file.Dispose();
}
