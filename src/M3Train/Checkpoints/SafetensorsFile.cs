using System.Buffers.Binary;
using System.Text.Json;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// Reads and writes the safetensors format (8-byte little-endian header length, a JSON header of
/// dtype/shape/data_offsets per tensor, then raw little-endian bytes). Written files carry
/// <c>{"format":"pt"}</c> metadata and an 8-byte-aligned header, as Hugging Face's writer does, so
/// transformers loads them.
/// </summary>
public static class SafetensorsFile
{
    const int BufferSize = 1 << 20;

    /// <summary>Opens a file for reading; its whole header is checked first (see <see cref="SafetensorsReader"/>).</summary>
    public static SafetensorsReader Open(string path) => new(path);

    /// <summary>All tensors of a file, on the CPU, in the header's order.</summary>
    public static List<KeyValuePair<string, Tensor>> Read(string path)
    {
        using var file = Open(path);
        return file.ReadAll();
    }

    /// <summary>Writes tensors (any device; contiguous copies are made where needed) in the given order.</summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, Tensor>> tensors)
    {
        var headerStream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(headerStream))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("__metadata__");
            writer.WriteString("format", "pt");
            writer.WriteEndObject();
            long offset = 0;
            foreach (var (name, tensor) in tensors)
            {
                long bytes = tensor.NumberOfElements * tensor.ElementSize;
                writer.WriteStartObject(name);
                writer.WriteString("dtype", DtypeName(tensor.dtype, name));
                writer.WriteStartArray("shape");
                foreach (long d in tensor.shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes;
            }
            writer.WriteEndObject();
        }
        // Pad with spaces so the data starts 8-byte aligned, as Hugging Face's writer does.
        while (headerStream.Length % 8 != 0) headerStream.WriteByte((byte)' ');

        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize);
        Span<byte> lengthBytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)headerStream.Length);
        stream.Write(lengthBytes);
        headerStream.Position = 0;
        headerStream.CopyTo(stream);
        foreach (var (_, tensor) in tensors)
        {
            using var cpuCopy = tensor.detach().cpu().contiguous();
            cpuCopy.WriteBytesToStream(stream, BufferSize);
        }
    }

    internal static ScalarType ParseDtype(string path, string name, string? dtype) => dtype switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new M3TrainException($"{path}: tensor '{name}': unsupported dtype '{dtype}' (M3Train reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)."),
    };

    static string DtypeName(ScalarType type, string name) => type switch
    {
        ScalarType.Float64 => "F64",
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new ArgumentException($"tensor '{name}': safetensors has no dtype for {type}."),
    };

    internal static string Shape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
