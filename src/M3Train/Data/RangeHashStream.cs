using System.Security.Cryptography;

namespace M3Train.Data;

/// <summary>
/// Reads on through a stream while hashing (SHA-256) only its first <c>rangeBytes</c> bytes: a part of the row index
/// hashes exactly its byte range of the data file, though its last line may run past the range's end.
/// </summary>
sealed class RangeHashStream(Stream inner, long rangeBytes) : Stream
{
    readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    long _read;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int read = inner.Read(buffer);
        long inRange = Math.Clamp(rangeBytes - _read, 0, read);
        if (inRange > 0) _hash.AppendData(buffer[..(int)inRange]);
        _read += read;
        return read;
    }

    /// <summary>Reads what is left of the range (the caller stopped early) and returns its hash, in lower-case hex.</summary>
    public string FinishHash()
    {
        byte[] buffer = new byte[1 << 16];
        while (_read < rangeBytes)
            if (Read(buffer.AsSpan(0, (int)Math.Min(buffer.Length, rangeBytes - _read))) == 0) break;
        return Convert.ToHexStringLower(_hash.GetHashAndReset());
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _read; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _hash.Dispose();
        base.Dispose(disposing);
    }
}
