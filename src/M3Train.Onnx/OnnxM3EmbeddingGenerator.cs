using M3Train.Text;
using Microsoft.Extensions.AI;

namespace M3Train.Onnx;

/// <summary>
/// An exported M3 model as Microsoft.Extensions.AI's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: the dense
/// vector (normalized CLS, what <c>BGEM3FlagModel.encode</c> returns as <c>dense_vecs</c>) of each text, so the model
/// drops into Semantic Kernel, vector stores and any code written against the interface. The lexical weights and the
/// multi-vector output, which the interface has no place for, come from <see cref="EncodeAsync"/> on the same model.
/// Runs on the CPU with ONNX Runtime; texts are batched longest first and truncated to the export's max_length.
/// </summary>
public sealed class OnnxM3EmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    readonly OnnxM3Encoder _encoder;
    readonly bool _ownsEncoder;
    readonly int _batchSize;
    readonly EmbeddingGeneratorMetadata _metadata;

    /// <param name="encoder">The export to run.</param>
    /// <param name="batchSize">Most texts per ONNX Runtime call.</param>
    /// <param name="ownsEncoder">Dispose <paramref name="encoder"/> with this generator.</param>
    public OnnxM3EmbeddingGenerator(OnnxM3Encoder encoder, int batchSize = 32, bool ownsEncoder = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _encoder = encoder;
        _batchSize = batchSize;
        _ownsEncoder = ownsEncoder;
        _metadata = new EmbeddingGeneratorMetadata("M3Train", new Uri(Path.GetFullPath(encoder.Folder)),
            Path.GetFileName(Path.TrimEndingDirectorySeparator(encoder.Folder)), encoder.Manifest.Config.HiddenSize);
    }

    /// <summary>Opens an export folder written by <c>m3train export-onnx</c>.</summary>
    public static OnnxM3EmbeddingGenerator Open(string folder, int batchSize = 32) =>
        new(OnnxM3Encoder.Open(folder), batchSize, ownsEncoder: true);

    /// <summary>The encoder behind the generator.</summary>
    public OnnxM3Encoder Encoder => _encoder;

    /// <summary>The dense vector of each text, in order; <c>options.Dimensions</c>, when given, must be the model's.</summary>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        int dimensions = _encoder.Manifest.Config.HiddenSize;
        if (options?.Dimensions is { } asked && asked != dimensions)
            throw new ArgumentException($"this model's dense vectors have {dimensions} dimensions; {asked} were asked for (M3 vectors are not trained to be truncated)", nameof(options));
        var (encodings, tokens) = await Task.Run(() => Encode(values, EncodingParts.Dense, cancellationToken), cancellationToken).ConfigureAwait(false);
        var created = DateTimeOffset.UtcNow;
        return new GeneratedEmbeddings<Embedding<float>>(encodings.Select(e => new Embedding<float>(e.Dense) { ModelId = _metadata.DefaultModelId, CreatedAt = created }))
        {
            Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens },
        };
    }

    /// <summary>The requested <paramref name="parts"/> of each text (dense, lexical weights, multi-vector), in order.</summary>
    public async Task<IReadOnlyList<M3Encoding>> EncodeAsync(IEnumerable<string> values, EncodingParts parts = EncodingParts.All,
        CancellationToken cancellationToken = default) =>
        (await Task.Run(() => Encode(values, parts, cancellationToken), cancellationToken).ConfigureAwait(false)).Encodings;

    /// <summary>Tokenizes (counting tokens) and encodes in rounds, so a cancellation is seen between rounds.</summary>
    (IReadOnlyList<M3Encoding> Encodings, long Tokens) Encode(IEnumerable<string> values, EncodingParts parts, CancellationToken cancellationToken)
    {
        var ids = _encoder.Tokenizer.EncodeBatch(values.ToList(), _encoder.Manifest.MaxLength);
        var encodings = new List<M3Encoding>(ids.Length);
        foreach (int[][] round in ids.Chunk(_batchSize * 8))
        {
            cancellationToken.ThrowIfCancellationRequested();
            encodings.AddRange(_encoder.Encode(round, _batchSize, parts));
        }
        return (encodings, ids.Sum(row => (long)row.Length));
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType == typeof(OnnxM3Encoder)) return _encoder;
        return null;
    }

    public void Dispose()
    {
        if (_ownsEncoder) _encoder.Dispose();
    }
}
