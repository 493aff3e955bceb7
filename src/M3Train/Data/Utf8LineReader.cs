namespace M3Train.Data;

/// <summary>
/// Reads a stream line by line as raw UTF-8 bytes, so a caller can validate each line and name its
/// number when it is bad (a <see cref="StreamReader"/> decodes ahead and cannot say which line failed).
/// A UTF-8 byte-order mark at the start is skipped (unless the stream starts inside a file); "\r\n" and "\n" both end a line. A line longer than the
/// limit is passed over without being held in memory and reported by <see cref="LineTooLong"/>.
/// </summary>
public sealed class Utf8LineReader : IDisposable
{
    static ReadOnlySpan<byte> ByteOrderMark => [0xEF, 0xBB, 0xBF];

    readonly Stream _stream;
    readonly bool _leaveOpen;
    readonly int _maxLineBytes;
    byte[] _buffer = new byte[1 << 16];
    int _start, _end;
    bool _eof, _first;

    /// <param name="maxLineBytes">Longest line returned whole; a longer one comes back empty with <see cref="LineTooLong"/> set.</param>
    /// <param name="skipByteOrderMark">Whether a byte-order mark at the start is skipped: false where the stream starts inside a file.</param>
    public Utf8LineReader(Stream stream, bool leaveOpen = false, int maxLineBytes = int.MaxValue, bool skipByteOrderMark = true)
    {
        _stream = stream;
        _leaveOpen = leaveOpen;
        _maxLineBytes = maxLineBytes;
        _first = skipByteOrderMark;
    }

    /// <summary>Whether the line last returned was longer than the limit (it was returned empty, its bytes skipped).</summary>
    public bool LineTooLong { get; private set; }

    /// <summary>Bytes of the line last returned, without its terminator (also for a line that was too long).</summary>
    public long LineLength { get; private set; }

    /// <summary>1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>Byte offset in the stream where the next line starts.</summary>
    public long Position { get; private set; }

    /// <summary>Byte offset in the stream where the line last returned starts (for reading it again later).</summary>
    public long LineStart { get; private set; }

    /// <summary>The next line without its terminator; valid until the next call. False at the end.</summary>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        while (true)
        {
            if (_first && (_end - _start >= 3 || _eof))
            {
                _first = false;
                if (_buffer.AsSpan(_start, _end - _start).StartsWith(ByteOrderMark))
                {
                    _start += 3;
                    Position += 3;
                }
            }
            if (!_first)
            {
                int newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
                if (newline >= 0 || (_eof && _end > _start))
                {
                    int length = newline >= 0 ? newline : _end - _start;
                    int consumed = newline >= 0 ? length + 1 : length;
                    if (length > 0 && _buffer[_start + length - 1] == (byte)'\r') length--;
                    line = _buffer.AsSpan(_start, length);
                    LineStart = Position;
                    LineTooLong = length > _maxLineBytes;
                    LineLength = length;
                    if (LineTooLong) line = default;
                    _start += consumed;
                    Position += consumed;
                    LineNumber++;
                    return true;
                }
                if (_eof)
                {
                    line = default;
                    return false;
                }
                if (_end - _start > _maxLineBytes)
                {
                    line = default;
                    SkipLongLine();
                    return true;
                }
            }
            Fill();
        }
    }

    /// <summary>Passes over the rest of a line already known to be too long, reading through a fixed buffer.</summary>
    void SkipLongLine()
    {
        LineStart = Position;
        long length = 0;
        while (true)
        {
            int newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0 || _eof)
            {
                int taken = newline >= 0 ? newline : _end - _start;
                length += taken;
                _start += newline >= 0 ? taken + 1 : taken;
                Position += newline >= 0 ? taken + 1 : taken;
                break;
            }
            length += _end - _start;
            Position += _end - _start;
            _start = _end = 0;
            int read = _stream.Read(_buffer, 0, _buffer.Length);
            if (read == 0) _eof = true;
            _end = read;
        }
        LineTooLong = true;
        LineLength = length;
        LineNumber++;
    }

    void Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
            Array.Resize(ref _buffer, _buffer.Length * 2);
        int read = _stream.Read(_buffer, _end, _buffer.Length - _end);
        if (read == 0) _eof = true;
        _end += read;
    }

    public void Dispose()
    {
        if (!_leaveOpen) _stream.Dispose();
    }
}
