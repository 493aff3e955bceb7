namespace M3Train.Data;

/// <summary>
/// Reads a stream line by line as raw UTF-8 bytes, so a caller can validate each line and name its
/// number when it is bad (a <see cref="StreamReader"/> decodes ahead and cannot say which line failed).
/// A UTF-8 byte-order mark at the start is skipped; "\r\n" and "\n" both end a line.
/// </summary>
public sealed class Utf8LineReader : IDisposable
{
    static ReadOnlySpan<byte> ByteOrderMark => [0xEF, 0xBB, 0xBF];

    readonly Stream _stream;
    readonly bool _leaveOpen;
    byte[] _buffer = new byte[1 << 16];
    int _start, _end;
    bool _eof, _first = true;

    public Utf8LineReader(Stream stream, bool leaveOpen = false)
    {
        _stream = stream;
        _leaveOpen = leaveOpen;
    }

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
            }
            Fill();
        }
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
