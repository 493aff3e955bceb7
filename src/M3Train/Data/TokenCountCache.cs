using System.Text;
using Serilog;

namespace M3Train.Data;

/// <summary>
/// Keeps a file's <see cref="IndexedRows"/> (token counts, offsets, bad rows) on disk beside it, in
/// <c>.m3train-cache/</c>, under a key made of the file's content hash, the tokenizer's fingerprint and
/// the settings that change token counts; so a second run over the same data starts without tokenizing.
/// Written to a temporary file and renamed, so a crash never leaves a half-written cache.
/// </summary>
public static class TokenCountCache
{
    const string Magic = "M3TRAIN-TOKEN-COUNTS";
    const int Version = 1;
    public const string FolderName = ".m3train-cache";

    /// <summary>Where the cache of <paramref name="dataFile"/> under <paramref name="key"/> lives.</summary>
    public static string PathFor(string dataFile, string key) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dataFile))!, FolderName, $"{Path.GetFileName(dataFile)}.{key[..16]}.counts");

    /// <summary>The cached rows, or null when there is no usable cache (missing, other key, unreadable).</summary>
    public static IndexedRows? TryRead(string cacheFile, string key)
    {
        if (!File.Exists(cacheFile)) return null;
        try
        {
            using var reader = new BinaryReader(File.OpenRead(cacheFile), Encoding.UTF8);
            if (reader.ReadString() != Magic || reader.ReadInt32() != Version || reader.ReadString() != key) return null;
            var kind = (RowKind)reader.ReadByte();
            long total = reader.ReadInt64();
            var types = new string[reader.ReadInt32()];
            for (int i = 0; i < types.Length; i++) types[i] = reader.ReadString();
            var rows = new RowInfo[reader.ReadInt32()];
            for (int i = 0; i < rows.Length; i++)
                rows[i] = new RowInfo(reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt32(), reader.ReadInt32(),
                    reader.ReadInt32(), reader.ReadBoolean(), reader.ReadInt16());
            var bad = new (long, string)[reader.ReadInt32()];
            for (int i = 0; i < bad.Length; i++) bad[i] = (reader.ReadInt64(), reader.ReadString());
            return new IndexedRows(kind, total, types, rows, bad);
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or UnauthorizedAccessException)
        {
            Log.Warning("Ignoring unreadable token-count cache {Cache}: {Reason}", cacheFile, e.Message);
            return null;
        }
    }

    /// <summary>Writes the cache atomically; a folder that cannot be written to is logged and left alone.</summary>
    public static void Write(string cacheFile, string key, IndexedRows rows)
    {
        string temporary = $"{cacheFile}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(cacheFile)!);
            using (var writer = new BinaryWriter(File.Create(temporary), Encoding.UTF8))
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
            File.Move(temporary, cacheFile, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warning("Could not write the token-count cache {Cache} ({Reason}); the next run tokenizes again", cacheFile, e.Message);
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
