using System.Runtime.InteropServices;
using System.Text;
using M3Train.Text;
using Serilog;

namespace M3Train.Eval;

/// <summary>
/// Corpus encodings on disk, one file per (model content, corpus content, max length), so an evaluation of the
/// same model on the same corpus encodes it once. The file holds whichever <see cref="EncodingParts"/> were
/// computed; a later run that needs more encodes again and replaces it.
/// </summary>
/// <remarks>
/// File <c>corpus-&lt;key&gt;.m3enc</c>, little-endian: magic "M3ENC001", int32 parts, count, dense dim, ColBERT dim;
/// dense float32 [count, dim]; per text int32 n then n × (int32 id, float32 weight); int64 offsets [count + 1] and
/// float32 vectors [offsets[count], ColBERT dim]. Written to a temporary name and renamed, so a crash leaves no half file.
/// A file that does not read back is reported and ignored.
/// </remarks>
public sealed class CorpusEncodingCache(string directory, string key)
{
    const string Magic = "M3ENC001";

    /// <summary>The key of a model fingerprint, a corpus fingerprint and the passage max length.</summary>
    public static string KeyOf(string modelHash, string corpusHash, int maxLength) =>
        ContentHash.OfStrings(Magic, modelHash, corpusHash, maxLength.ToString(System.Globalization.CultureInfo.InvariantCulture))[..32];

    public string Path { get; } = System.IO.Path.Combine(directory, $"corpus-{key}.m3enc");

    /// <summary>The cached encodings if the file exists, reads back, has <paramref name="count"/> texts and every part of <paramref name="needed"/>.</summary>
    public TextEncodings? TryLoad(int count, EncodingParts needed)
    {
        if (!File.Exists(Path)) return null;
        try
        {
            using var reader = new BinaryReader(new BufferedStream(File.OpenRead(Path), 1 << 20), Encoding.UTF8);
            if (Encoding.ASCII.GetString(reader.ReadBytes(Magic.Length)) != Magic)
                throw new InvalidDataException("not a corpus encoding file");
            var parts = (EncodingParts)reader.ReadInt32();
            int n = reader.ReadInt32(), denseDim = reader.ReadInt32(), colbertDim = reader.ReadInt32();
            if (n != count || (parts & needed) != needed) return null;
            float[] dense = parts.HasFlag(EncodingParts.Dense) ? ReadArray<float>(reader, (long)n * denseDim) : [];
            var lexical = new IReadOnlyDictionary<int, float>[parts.HasFlag(EncodingParts.Lexical) ? n : 0];
            for (int i = 0; i < lexical.Length; i++)
            {
                int entries = reader.ReadInt32();
                var map = new Dictionary<int, float>(entries);
                for (int j = 0; j < entries; j++) map[reader.ReadInt32()] = reader.ReadSingle();
                lexical[i] = map;
            }
            long[] offsets = parts.HasFlag(EncodingParts.Colbert) ? ReadArray<long>(reader, n + 1L) : [];
            float[] colbert = parts.HasFlag(EncodingParts.Colbert) ? ReadArray<float>(reader, offsets[n] * colbertDim) : [];
            if (reader.BaseStream.ReadByte() != -1) throw new InvalidDataException("trailing bytes");
            return new TextEncodings(n, parts, denseDim, dense, lexical, colbertDim, offsets, colbert);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or OverflowException)
        {
            Log.Warning("{Path}: cached corpus encodings do not read back ({Reason}); encoding the corpus again", Path, e.Message);
            return null;
        }
    }

    public void Save(TextEncodings encodings)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        string temporary = $"{Path}.{Environment.ProcessId}.tmp";
        using (var writer = new BinaryWriter(new BufferedStream(File.Create(temporary), 1 << 20), Encoding.UTF8))
        {
            writer.Write(Encoding.ASCII.GetBytes(Magic));
            writer.Write((int)encodings.Parts);
            writer.Write(encodings.Count);
            writer.Write(encodings.DenseDim);
            writer.Write(encodings.ColbertDim);
            WriteArray(writer, encodings.Dense);
            foreach (var map in encodings.Lexical)
            {
                writer.Write(map.Count);
                foreach (var (id, weight) in map)
                {
                    writer.Write(id);
                    writer.Write(weight);
                }
            }
            WriteArray(writer, encodings.ColbertOffsets);
            WriteArray(writer, encodings.ColbertData);
        }
        File.Move(temporary, Path, overwrite: true);
    }

    // Spans of bytes are int-indexed: move large arrays in slices.
    const int SliceElements = 1 << 24;

    static T[] ReadArray<T>(BinaryReader reader, long length) where T : unmanaged
    {
        if (length < 0 || length > Array.MaxLength) throw new InvalidDataException($"array length {length}");
        var result = new T[length];
        for (long start = 0; start < length; start += SliceElements)
        {
            var bytes = MemoryMarshal.AsBytes(result.AsSpan((int)start, (int)Math.Min(SliceElements, length - start)));
            for (int total = 0, read; total < bytes.Length; total += read)
                if ((read = reader.Read(bytes[total..])) == 0) throw new InvalidDataException("file ends early");
        }
        return result;
    }

    static void WriteArray<T>(BinaryWriter writer, T[] values) where T : unmanaged
    {
        for (long start = 0; start < values.Length; start += SliceElements)
            writer.Write(MemoryMarshal.AsBytes(values.AsSpan((int)start, (int)Math.Min(SliceElements, values.Length - start))));
    }
}
