using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace M3Train.Tests.Checkpoints;

/// <summary>
/// Weights files written byte by byte, so tests can say exactly what a hostile file claims: a safetensors header
/// as given, or a torch.save zip whose state-dict pickle is emitted opcode by opcode (protocol 2, as torch writes it).
/// </summary>
internal static class CraftedFiles
{
    /// <summary>An 8-byte little-endian header length, the header, then <paramref name="data"/>.</summary>
    public static void Safetensors(string path, string header, byte[] data)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>A zip like torch.save's: <c>archive/data.pkl</c> (the pickle of <paramref name="tensors"/>), <c>archive/byteorder</c>, <c>archive/data/KEY</c>.</summary>
    public static void TorchZip(string path, IReadOnlyList<CraftedTensor> tensors, IReadOnlyDictionary<string, byte[]> storages, byte[]? pickle = null)
    {
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        void Entry(string name, byte[] bytes)
        {
            using var stream = zip.CreateEntry($"archive/{name}", CompressionLevel.NoCompression).Open();
            stream.Write(bytes);
        }
        Entry("data.pkl", pickle ?? StateDictPickle(tensors));
        Entry("byteorder", "little"u8.ToArray());
        foreach (var (key, bytes) in storages) Entry($"data/{key}", bytes);
    }

    /// <summary>The pickle torch.save writes for an OrderedDict of these tensors.</summary>
    public static byte[] StateDictPickle(IReadOnlyList<CraftedTensor> tensors)
    {
        var p = new PickleBytes();
        p.Op(0x80).Op(2);
        p.Global("collections", "OrderedDict").Op(')').Op('R');
        p.Op('(');
        foreach (var t in tensors)
        {
            p.Text(t.Name);
            p.Global("torch._utils", "_rebuild_tensor_v2");
            p.Op('(');
            p.Op('(').Text("storage").Global("torch", t.StorageType).Text(t.Key).Text("cpu").Long(t.StorageElements).Op('t').Op('Q');
            p.Long(t.Offset);
            p.Op('(');
            foreach (long d in t.Shape) p.Long(d);
            p.Op('t').Op('(');
            foreach (long s in t.Stride) p.Long(s);
            p.Op('t');
            p.Op(0x89);
            p.Global("collections", "OrderedDict").Op(')').Op('R');
            p.Op('t').Op('R');
        }
        p.Op('u').Op('.');
        return p.ToArray();
    }

    /// <summary>Little-endian float32 bytes of 0, 1, 2, ...</summary>
    public static byte[] Floats(long count)
    {
        var bytes = new byte[count * 4];
        for (int i = 0; i < count; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), i);
        return bytes;
    }

    sealed class PickleBytes
    {
        readonly MemoryStream _bytes = new();

        public PickleBytes Op(int code)
        {
            _bytes.WriteByte((byte)code);
            return this;
        }

        public PickleBytes Global(string module, string name)
        {
            Op('c');
            _bytes.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
            return this;
        }

        public PickleBytes Text(string s)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(s);
            Op('X');
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
            _bytes.Write(length);
            _bytes.Write(utf8);
            return this;
        }

        /// <summary>LONG1 with 8 bytes, so any long (2^63 - 1, -1) can be written.</summary>
        public PickleBytes Long(long value)
        {
            Op(0x8a).Op(8);
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
            _bytes.Write(bytes);
            return this;
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
