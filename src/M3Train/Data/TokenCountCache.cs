using System.Security.Cryptography;
using System.Text;
using Serilog;

namespace M3Train.Data;

/// <summary>
/// Keeps a file's <see cref="IndexedRows"/> (token counts, offsets, bad rows) on disk beside it, in
/// <c>.m3train-cache/</c>, under a key made of the file's content hash, the tokenizer's fingerprint and
/// the settings that change token counts; so a second run over the same data starts without tokenizing.
/// Written to a temporary file and renamed, so a crash never leaves a half-written cache. A cache is never
/// trusted blindly: it ends with the SHA-256 of its contents, and every count and length in it is checked against
/// what the file can hold, so a damaged or crafted cache is rebuilt (with a warning) instead of read.
/// </summary>
public static class TokenCountCache
{
    const string Magic = "M3TRAIN-TOKEN-COUNTS";
    const int Version = 2;
    const int HashBytes = 32;
    /// <summary>Bytes of one <see cref="RowInfo"/> on disk: bounds a row count by the file's size before anything is allocated.</summary>
    const int RowBytes = 8 + 8 + 4 + 4 + 4 + 1 + 2;
    public const string FolderName = ".m3train-cache";

    /// <summary>Where the cache of <paramref name="dataFile"/> under <paramref name="key"/> lives.</summary>
    public static string PathFor(string dataFile, string key) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dataFile))!, FolderName, $"{Path.GetFileName(dataFile)}.{key[..16]}.counts");

    /// <summary>The cached rows, or null when there is no usable cache (missing, other key, damaged: it is then rebuilt).</summary>
    public static IndexedRows? TryRead(string cacheFile, string key)
    {
        if (!File.Exists(cacheFile)) return null;
        try
        {
            using var stream = File.OpenRead(cacheFile);
            long payload = stream.Length - HashBytes;
            if (payload < 0) throw new InvalidDataException($"{stream.Length} bytes, shorter than its checksum");
            var trailer = new byte[HashBytes];
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[1 << 16];
                for (long left = payload; left > 0;)
                {
                    int read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                    if (read == 0) throw new EndOfStreamException();
                    hash.AppendData(buffer, 0, read);
                    left -= read;
                }
                stream.ReadExactly(trailer);
                if (!hash.GetHashAndReset().AsSpan().SequenceEqual(trailer)) throw new InvalidDataException("its checksum does not match its contents");
            }
            stream.Position = 0;
            using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
            var rows = Parse(new Bounded(reader, payload), key);
            if (rows is not null && stream.Position != payload) throw new InvalidDataException("bytes after the last record");
            return rows;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or UnauthorizedAccessException)
        {
            Log.Warning("Token-count cache {Cache} is unusable ({Reason}); the data file is read again and the cache rebuilt", cacheFile, e.Message);
            return null;
        }
    }

    /// <summary>The rows, or null for a cache of another format or key (a normal miss).</summary>
    static IndexedRows? Parse(Bounded r, string key)
    {
        if (r.String() != Magic || r.Reader.ReadInt32() != Version || r.String() != key) return null;
        byte kind = r.Reader.ReadByte();
        if (!Enum.IsDefined((RowKind)kind)) throw new InvalidDataException($"row kind {kind}");
        long total = r.Reader.ReadInt64();
        var types = new string[r.Count(1)];
        for (int i = 0; i < types.Length; i++) types[i] = r.String();
        var rows = new RowInfo[r.Count(RowBytes)];
        for (int i = 0; i < rows.Length; i++)
        {
            var row = new RowInfo(r.Reader.ReadInt64(), r.Reader.ReadInt64(), r.Reader.ReadInt32(), r.Reader.ReadInt32(),
                r.Reader.ReadInt32(), r.Reader.ReadBoolean(), r.Reader.ReadInt16());
            if (row.Key < 0 || row.Line < 1 || row.QueryTokens < 0 || row.PassageTokens < 0 || row.Negatives < 0 || row.TypeId < -1 || row.TypeId >= types.Length)
                throw new InvalidDataException($"row record {i} is out of range");
            rows[i] = row;
        }
        var bad = new (long, string)[r.Count(9)];
        for (int i = 0; i < bad.Length; i++) bad[i] = (r.Reader.ReadInt64(), r.String());
        if (total != rows.Length + bad.Length) throw new InvalidDataException($"{total} rows in all, but {rows.Length} good and {bad.Length} bad");
        return new IndexedRows((RowKind)kind, total, types, rows, bad);
    }

    /// <summary>Reads counts and strings no larger than what is left of the file, so a damaged length cannot allocate gigabytes.</summary>
    sealed class Bounded(BinaryReader reader, long end)
    {
        static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

        public BinaryReader Reader => reader;

        long Left => end - reader.BaseStream.Position;

        public int Count(int bytesEach)
        {
            int n = reader.ReadInt32();
            if (n < 0 || n > Left / bytesEach) throw new InvalidDataException($"a count of {n} records does not fit in what is left of the file");
            return n;
        }

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

    /// <summary>Writes the cache atomically; a folder that cannot be written to is logged and left alone.</summary>
    public static void Write(string cacheFile, string key, IndexedRows rows)
    {
        string temporary = $"{cacheFile}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(cacheFile)!);
            using (var stream = File.Create(temporary))
            {
                using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
                {
                    writer.Write(Magic);
                    writer.Write(Version);
                    writer.Write(key);
                    writer.Write((byte)rows.Kind);
                    writer.Write(rows.TotalRows);
                    writer.Write(rows.Types.Count);
                    foreach (string type in rows.Types) writer.Write(type);
                    writer.Write(rows.Rows.Length);
                    foreach (var row in rows.Rows)
                    {
                        writer.Write(row.Key);
                        writer.Write(row.Line);
                        writer.Write(row.QueryTokens);
                        writer.Write(row.PassageTokens);
                        writer.Write(row.Negatives);
                        writer.Write(row.HasScores);
                        writer.Write(row.TypeId);
                    }
                    writer.Write(rows.BadRows.Count);
                    foreach (var (line, reason) in rows.BadRows)
                    {
                        writer.Write(line);
                        writer.Write(reason);
                    }
                }
                stream.Position = 0;
                byte[] checksum = SHA256.HashData(stream);
                stream.Write(checksum);
            }
            File.Move(temporary, cacheFile, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warning("Could not write the token-count cache {Cache} ({Reason}); the next run tokenizes again", cacheFile, e.Message);
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
