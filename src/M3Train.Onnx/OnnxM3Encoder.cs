using M3Train.Text;
using Microsoft.ML.OnnxRuntime;

namespace M3Train.Onnx;

/// <summary>
/// Runs a folder written by <see cref="M3OnnxExporter"/> with ONNX Runtime (CPU) and returns FlagEmbedding-style
/// representations. No TorchSharp: a deployment needs this project, M3Train.Text and ONNX Runtime only.
/// Texts are batched by length (longest first, as FlagEmbedding does) so little padding is computed; results come
/// back in input order.
/// </summary>
public sealed class OnnxM3Encoder : IDisposable
{
    readonly InferenceSession session;
    readonly RunOptions runOptions = new();

    OnnxM3Encoder(string folder, OnnxManifest manifest, XlmrTokenizer tokenizer, InferenceSession session)
    {
        Folder = folder;
        Manifest = manifest;
        Tokenizer = tokenizer;
        this.session = session;
    }

    public string Folder { get; }

    public OnnxManifest Manifest { get; }

    /// <summary>The tokenizer copied into the export folder.</summary>
    public XlmrTokenizer Tokenizer { get; }

    /// <param name="folder">An export folder (manifest.json, model.onnx, tokenizer files).</param>
    /// <param name="intraOpThreads">ONNX Runtime threads per operator; 0 = its default (all cores).</param>
    public static OnnxM3Encoder Open(string folder, int intraOpThreads = 0)
    {
        var manifest = OnnxManifest.Read(folder);
        string modelPath = Path.Combine(folder, manifest.ModelFile);
        if (!File.Exists(modelPath))
            throw new M3OnnxException($"{modelPath}: not found");
        if (manifest.ExternalDataFile is { } data && !File.Exists(Path.Combine(folder, data)))
            throw new M3OnnxException($"{Path.Combine(folder, data)}: not found (the model's weights are in this file)");
        XlmrTokenizer tokenizer;
        try
        {
            tokenizer = XlmrTokenizer.FromFolder(folder);
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw new M3OnnxException(e.Message, e);
        }
        if (manifest.Config.PadTokenId != XlmrTokenizer.PadId)
            throw new M3OnnxException($"{Path.Combine(folder, OnnxManifest.FileName)}: pad_token_id {manifest.Config.PadTokenId} differs from the XLM-R tokenizer's {XlmrTokenizer.PadId}");
        using var options = new SessionOptions { IntraOpNumThreads = intraOpThreads };
        try
        {
            return new OnnxM3Encoder(folder, manifest, tokenizer, new InferenceSession(modelPath, options));
        }
        catch (OnnxRuntimeException e)
        {
            throw new M3OnnxException($"{modelPath}: ONNX Runtime cannot load it ({e.Message})", e);
        }
    }

    /// <summary>
    /// Runs one padded batch: <paramref name="inputIds"/> and <paramref name="attentionMask"/> row-major
    /// [batchSize, sequenceLength]. Only the outputs <paramref name="parts"/> needs are computed.
    /// </summary>
    public OnnxM3Outputs Run(long[] inputIds, long[] attentionMask, int batchSize, int sequenceLength, EncodingParts parts = EncodingParts.All)
    {
        if (inputIds.Length != batchSize * sequenceLength || attentionMask.Length != inputIds.Length)
            throw new ArgumentException($"inputs hold {inputIds.Length} ids and {attentionMask.Length} mask values, expected {batchSize}x{sequenceLength}");
        var names = new List<string>();
        if (parts.HasFlag(EncodingParts.Dense)) names.Add(M3OnnxGraph.DenseVecs);
        if (parts.HasFlag(EncodingParts.Lexical)) names.Add(M3OnnxGraph.SparseWeights);
        if (parts.HasFlag(EncodingParts.Colbert)) names.Add(M3OnnxGraph.ColbertVecs);
        if (names.Count == 0)
            throw new ArgumentException("no output requested", nameof(parts));

        long[] shape = [batchSize, sequenceLength];
        using var ids = OrtValue.CreateTensorValueFromMemory(inputIds, shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(attentionMask, shape);
        using var results = session.Run(runOptions, [M3OnnxGraph.InputIds, M3OnnxGraph.AttentionMask], [ids, mask], names);
        float[] Output(string name) => names.IndexOf(name) is var i and >= 0 ? results[i].GetTensorDataAsSpan<float>().ToArray() : [];
        return new OnnxM3Outputs(Output(M3OnnxGraph.DenseVecs), Output(M3OnnxGraph.SparseWeights), Output(M3OnnxGraph.ColbertVecs),
            batchSize, sequenceLength, Manifest.Config.HiddenSize, Manifest.ColbertDim);
    }

    /// <summary>
    /// Encodes texts: tokenized and truncated to <paramref name="maxLength"/> tokens (default: the manifest's
    /// max_length), run in length-sorted batches of <paramref name="batchSize"/>; results in input order.
    /// </summary>
    public IReadOnlyList<M3Encoding> Encode(IReadOnlyList<string> texts, int batchSize = 16, int? maxLength = null, EncodingParts parts = EncodingParts.All) =>
        Encode(Tokenizer.EncodeBatch(texts, maxLength ?? Manifest.MaxLength), batchSize, parts);

    /// <summary>
    /// Encodes tokenized texts (each with &lt;s&gt; and &lt;/s&gt;, unpadded) in batches of <paramref name="batchSize"/>,
    /// longest first as FlagEmbedding does, so each batch pads little; results in input order.
    /// </summary>
    public IReadOnlyList<M3Encoding> Encode(IReadOnlyList<int[]> tokenIds, int batchSize = 16, EncodingParts parts = EncodingParts.All)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be at least 1");
        foreach (int[] row in tokenIds)
            if (row.Length > Manifest.Config.MaxTokens)
                throw new M3OnnxException($"a text has {row.Length} tokens; the model takes at most {Manifest.Config.MaxTokens}");
        var results = new M3Encoding[tokenIds.Count];
        foreach (int[] rows in LengthBatches.LongestFirst(tokenIds.Select(t => t.Length).ToList(), batchSize))
        {
            var batch = EncodedBatch.Pad(rows.Select(i => tokenIds[i]).ToList());
            var outputs = Run(batch.InputIds, batch.AttentionMask, batch.BatchSize, batch.SequenceLength, parts);
            int length = batch.SequenceLength;
            for (int r = 0; r < rows.Length; r++)
                results[rows[r]] = outputs.ToEncoding(r, batch.InputIds.AsSpan(r * length, length), batch.AttentionMask.AsSpan(r * length, length), Manifest.Config.SpecialTokenIds);
        }
        return results;
    }

    public void Dispose()
    {
        session.Dispose();
        runOptions.Dispose();
    }
}
