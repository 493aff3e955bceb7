using System.IO.Compression;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// An open <c>torch.save</c> zip file (<c>pytorch_model.bin</c>, <c>colbert_linear.pt</c>, <c>sparse_linear.pt</c>)
/// whose state dict has been read as data (<see cref="StateDictPickle"/>, nothing run) and checked against the
/// archive: each storage is there with exactly the bytes its element count needs, each tensor's shape, strides
/// and offset stay inside its storage, the byte order is little-endian. A tensor's dtype is its storage's, never
/// converted here (an IntStorage stays int32 for the loader to refuse). Nothing is allocated before
/// <see cref="Read"/>.
/// </summary>
public sealed class TorchPickleReader : ITensorFile
{
    const int BufferSize = 1 << 20;
    const long MaxPickleBytes = 16L << 20;
    /// <summary>Deflate cannot expand data by more than about 1032:1; a larger claim is a zip bomb.</summary>
    const long MaxDeflateRatio = 1032;

    readonly FileStream _stream;
    readonly ZipArchive _zip;
    readonly List<(ZipArchiveEntry Storage, StateDictPickle.View View)> _views = [];

    public TorchPickleReader(string path)
    {
        Path = path;
        _stream = TensorFileStream.Open(path);
        try
        {
            _zip = OpenZip();
            Entries = ReadIndex();
        }
        catch (InvalidDataException e)
        {
            // ZipArchive reads its central directory lazily, so damage shows on first use of Entries, not in the constructor.
            _zip?.Dispose();
            _stream.Dispose();
            throw new M3TrainException($"{path}: damaged zip archive ({e.Message}).", e);
        }
        catch
        {
            _zip?.Dispose();
            _stream.Dispose();
            throw;
        }
    }

    public string Path { get; }

    public IReadOnlyList<TensorEntry> Entries { get; }

    public Tensor Read(TensorEntry entry)
    {
        TensorFileStream.CheckOwned(Entries, entry);
        var (storage, view) = _views[entry.Index];
        int size = TensorEntry.ElementSize(view.Storage.DType);
        long span = Span(view.Shape, view.Stride);
        try
        {
            using var data = storage.Open();
            Skip(data, view.Offset * size);
            using var flat = empty(span, view.Storage.DType);
            flat.ReadBytesFromStream(data, BufferSize);
            using var strided = flat.as_strided(view.Shape, view.Stride, 0);
            return strided.contiguous();
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw new M3TrainException($"{Path}: tensor '{entry.Name}' could not be read ({e.Message}); the file is damaged.", e);
        }
    }

    ZipArchive OpenZip()
    {
        Span<byte> signature = stackalloc byte[4];
        if (_stream.Length < 4 || _stream.Read(signature) != 4 || !signature.SequenceEqual("PK\u0003\u0004"u8))
            throw new M3TrainException($"{Path}: not a torch.save zip file ({_stream.Length} bytes; files in the legacy pre-1.6 torch.save format " +
                                       "are not read: re-save them with a current PyTorch, or convert them to safetensors).");
        _stream.Position = 0;
        return new ZipArchive(_stream, ZipArchiveMode.Read, leaveOpen: true);
    }

    TensorEntry[] ReadIndex()
    {
        var pickles = _zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) || e.FullName == "data.pkl").ToList();
        if (pickles.Count != 1)
            throw new M3TrainException($"{Path}: {pickles.Count} data.pkl entries in the archive; a torch.save file has exactly one.");
        string prefix = pickles[0].FullName[..^"data.pkl".Length];
        var entries = _zip.Entries.GroupBy(e => e.FullName, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        if (entries.TryGetValue(prefix + "byteorder", out var order) && ReadText(order[0], 16) is not "little")
            throw new M3TrainException($"{Path}: saved on a big-endian machine; only little-endian files are read.");

        var views = StateDictPickle.Read(ReadAll(pickles[0], MaxPickleBytes), $"{Path} (data.pkl)");
        var result = new List<TensorEntry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, view) in views)
        {
            if (!names.Add(name)) throw new M3TrainException($"{Path}: tensor '{name}' appears twice.");
            string storageName = $"{prefix}data/{view.Storage.Key}";
            if (!entries.TryGetValue(storageName, out var found) || found.Count != 1)
                throw new M3TrainException($"{Path}: tensor '{name}': storage {storageName} is {(found is null ? "missing from" : "repeated in")} the archive.");
            CheckView(name, view, found[0]);
            long[] shape = view.Shape;
            result.Add(new TensorEntry(name, view.Storage.DType, shape, result.Count));
            _views.Add((found[0], view));
        }
        return [.. result];
    }

    void CheckView(string name, StateDictPickle.View view, ZipArchiveEntry storage)
    {
        var s = view.Storage;
        int size = TensorEntry.ElementSize(s.DType);
        string what = $"tensor '{name}' ({s.DType} {SafetensorsFile.Shape(view.Shape)}, stride {SafetensorsFile.Shape(view.Stride)}, offset {view.Offset})";
        if (TensorEntry.CheckedElements([s.Elements], size) is null || s.Elements * size != storage.Length)
            throw new M3TrainException($"{Path}: {what}: its storage claims {s.Elements} elements, but data/{s.Key} holds {storage.Length} bytes.");
        if (storage.Length > Math.Max(storage.CompressedLength, 1) * MaxDeflateRatio || storage.CompressedLength > _stream.Length)
            throw new M3TrainException($"{Path}: {what}: data/{s.Key} claims {storage.Length} bytes from {storage.CompressedLength} stored; not a real archive entry.");
        if (TensorEntry.CheckedElements(view.Shape, size) is null || view.Stride.Any(x => x < 0) || view.Offset < 0)
            throw new M3TrainException($"{Path}: {what}: negative or overflowing shape, stride or offset.");
        long span = Span(view.Shape, view.Stride);
        if (span < 0 || view.Offset > s.Elements - span)
            throw new M3TrainException($"{Path}: {what}: reaches past the {s.Elements} elements of its storage.");
    }

    /// <summary>Elements from the first to the last one the view reads (0 for an empty tensor); -1 when that overflows.</summary>
    static long Span(long[] shape, long[] stride)
    {
        if (shape.Any(d => d == 0)) return 0;
        try
        {
            long last = 0;
            for (int i = 0; i < shape.Length; i++) last = checked(last + (shape[i] - 1) * stride[i]);
            return checked(last + 1);
        }
        catch (OverflowException)
        {
            return -1;
        }
    }

    byte[] ReadAll(ZipArchiveEntry entry, long limit)
    {
        if (entry.Length > limit)
            throw new M3TrainException($"{Path}: {entry.FullName} claims {entry.Length} bytes, more than such an entry ever holds ({limit} at most).");
        try
        {
            using var data = entry.Open();
            var bytes = new byte[entry.Length];
            data.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw new M3TrainException($"{Path}: {entry.FullName} cannot be read ({e.Message}).", e);
        }
    }

    string ReadText(ZipArchiveEntry entry, long limit) => System.Text.Encoding.ASCII.GetString(ReadAll(entry, limit)).Trim();

    static void Skip(Stream stream, long bytes)
    {
        if (stream.CanSeek)
        {
            stream.Seek(bytes, SeekOrigin.Current);
            return;
        }
        var buffer = new byte[(int)Math.Min(bytes, BufferSize)];
        while (bytes > 0)
        {
            int read = stream.Read(buffer, 0, (int)Math.Min(bytes, buffer.Length));
            if (read == 0) throw new EndOfStreamException();
            bytes -= read;
        }
    }

    public void Dispose()
    {
        _zip.Dispose();
        _stream.Dispose();
    }
}
