using System.Buffers.Binary;
using System.Text.Json;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// An open safetensors file whose whole header has been checked against the file: a sane header length, a JSON
/// object of tensors with known dtypes, non-negative shapes whose byte size does not overflow, and
/// <c>data_offsets</c> that hold exactly those bytes inside the data area without overlapping another tensor.
/// Nothing is allocated for a tensor until <see cref="Read"/>, so a hostile header costs no more than its own size.
/// </summary>
public sealed class SafetensorsReader : ITensorFile
{
    const int BufferSize = 1 << 20;
    const long MaxHeaderBytes = 100L << 20;
    const string MetadataKey = "__metadata__";

    readonly FileStream _stream;
    readonly long _dataStart;
    readonly long[] _begin;

    public SafetensorsReader(string path)
    {
        Path = path;
        _stream = TensorFileStream.Open(path);
        try
        {
            (Entries, _begin, _dataStart) = ReadHeader();
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    public string Path { get; }

    public IReadOnlyList<TensorEntry> Entries { get; }

    public Tensor Read(TensorEntry entry)
    {
        TensorFileStream.CheckOwned(Entries, entry);
        var tensor = empty(entry.Shape, entry.DType);
        try
        {
            _stream.Position = _dataStart + _begin[entry.Index];
            tensor.ReadBytesFromStream(_stream, BufferSize);
            return tensor;
        }
        catch (Exception e) when (e is IOException or EndOfStreamException)
        {
            tensor.Dispose();
            throw new M3TrainException($"{Path}: tensor '{entry.Name}' could not be read ({e.Message}); the file changed or is damaged.", e);
        }
    }

    (TensorEntry[] Entries, long[] Begin, long DataStart) ReadHeader()
    {
        long fileLength = _stream.Length;
        if (fileLength < 8)
            throw Bad($"{fileLength} bytes, too short for a safetensors file (an 8-byte header length, then a JSON header)");
        Span<byte> lengthBytes = stackalloc byte[8];
        _stream.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength < 2 || headerLength > (ulong)Math.Min(MaxHeaderBytes, fileLength - 8))
            throw Bad($"header length {headerLength} does not fit a {fileLength}-byte file (at most {MaxHeaderBytes >> 20} MiB); not a safetensors file");
        var header = new byte[headerLength];
        _stream.ReadExactly(header);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw Bad("the header is not valid UTF-8");

        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw Bad($"malformed JSON header ({e.Message})", e);
        }
        using (json)
        {
            if (json.RootElement.ValueKind != JsonValueKind.Object) throw Bad("the header is not a JSON object");
            var entries = new List<TensorEntry>();
            var spans = new List<(long Begin, long End)>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in json.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name)) throw Bad($"tensor '{property.Name}' appears twice in the header");
                if (property.Name == MetadataKey)
                {
                    CheckMetadata(property.Value);
                    continue;
                }
                var (entry, begin, end) = ReadEntry(property, entries.Count, dataLength);
                entries.Add(entry);
                spans.Add((begin, end));
            }
            CheckNoOverlap(entries, spans);
            return ([.. entries], spans.Select(s => s.Begin).ToArray(), dataStart);
        }
    }

    (TensorEntry Entry, long Begin, long End) ReadEntry(JsonProperty property, int index, long dataLength)
    {
        string name = property.Name;
        var value = property.Value;
        if (value.ValueKind != JsonValueKind.Object) throw Bad($"tensor '{name}': expected an object with dtype, shape and data_offsets");
        if (!value.TryGetProperty("dtype", out var dtypeNode) || dtypeNode.ValueKind != JsonValueKind.String)
            throw Bad($"tensor '{name}': no \"dtype\" string");
        var dtype = SafetensorsFile.ParseDtype(Path, name, dtypeNode.GetString());
        long[] shape = Integers(value, "shape", name, count: null);
        long[] offsets = Integers(value, "data_offsets", name, count: 2);
        int size = TensorEntry.ElementSize(dtype);
        long elements = TensorEntry.CheckedElements(shape, size)
            ?? throw Bad($"tensor '{name}': shape {SafetensorsFile.Shape(shape)} is negative or too large to address");
        long bytes = elements * size;
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin || end > dataLength || end - begin != bytes)
            throw Bad($"tensor '{name}': data_offsets [{begin}, {end}] do not hold the {bytes} bytes of {dtypeNode.GetString()} {SafetensorsFile.Shape(shape)} " +
                      $"inside the {dataLength}-byte data area");
        return (new TensorEntry(name, dtype, shape, index), begin, end);
    }

    long[] Integers(JsonElement value, string key, string name, int? count)
    {
        if (!value.TryGetProperty(key, out var node) || node.ValueKind != JsonValueKind.Array)
            throw Bad($"tensor '{name}': no \"{key}\" list");
        var result = new List<long>();
        foreach (var item in node.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long n) || n < 0)
                throw Bad($"tensor '{name}': \"{key}\" holds {item.GetRawText()}, not a non-negative integer");
            result.Add(n);
        }
        if (count is int c && result.Count != c) throw Bad($"tensor '{name}': \"{key}\" has {result.Count} values, expected {c}");
        return [.. result];
    }

    /// <summary>The format allows only string values in the metadata; anything else marks a file written by something else.</summary>
    void CheckMetadata(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object) throw Bad($"\"{MetadataKey}\" is not an object of strings");
        foreach (var p in value.EnumerateObject())
            if (p.Value.ValueKind != JsonValueKind.String) throw Bad($"\"{MetadataKey}\".{p.Name} is not a string");
    }

    /// <summary>Two tensors must not share bytes: a crafted file could otherwise alias one tensor's data into another.</summary>
    void CheckNoOverlap(List<TensorEntry> entries, List<(long Begin, long End)> spans)
    {
        var order = Enumerable.Range(0, spans.Count).Where(i => spans[i].End > spans[i].Begin).OrderBy(i => spans[i].Begin).ToList();
        for (int k = 1; k < order.Count; k++)
        {
            var (previous, next) = (order[k - 1], order[k]);
            if (spans[next].Begin < spans[previous].End)
                throw Bad($"tensors '{entries[previous].Name}' [{spans[previous].Begin}, {spans[previous].End}] and '{entries[next].Name}' " +
                          $"[{spans[next].Begin}, {spans[next].End}] overlap in the data area");
        }
    }

    M3TrainException Bad(string problem, Exception? inner = null) =>
        inner is null ? new($"{Path}: {problem}.") : new($"{Path}: {problem}.", inner);

    public void Dispose() => _stream.Dispose();
}
