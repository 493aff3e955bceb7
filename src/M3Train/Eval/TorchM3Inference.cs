using M3Train.Checkpoints;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// <see cref="IM3Inference"/> over an <see cref="M3Model"/> on a TorchSharp device. Encoding and pair scores are
/// <see cref="M3Encoder"/>'s (the <c>encode</c> and <c>score</c> verbs' code), called in rounds of a few batches so
/// progress can be shown; the encodings are packed into flat host arrays (<see cref="TextEncodings"/>).
/// </summary>
public sealed class TorchM3Inference : IM3Inference, IDisposable
{
    /// <summary>Batches per <see cref="M3Encoder"/> call: texts are sorted by length within a round, progress moves between rounds.</summary>
    const int BatchesPerRound = 16;

    readonly M3Model _model;
    readonly M3Encoder _encoder;
    readonly Device _device;
    readonly int _batchSize;
    readonly M3Checkpoint? _owned;

    /// <param name="model">The model; it is moved to <paramref name="device"/> and put in eval mode.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="device">Where batches run.</param>
    /// <param name="batchSize">Texts per forward pass.</param>
    public TorchM3Inference(M3Model model, XlmrTokenizer tokenizer, Device device, int batchSize = 256)
        : this(model, tokenizer, device, batchSize, null)
    {
    }

    TorchM3Inference(M3Model model, XlmrTokenizer tokenizer, Device device, int batchSize, M3Checkpoint? owned)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _model = model;
        _device = device;
        _batchSize = batchSize;
        _owned = owned;
        Tokenizer = tokenizer;
        _model.to(device);
        _encoder = new M3Encoder(model, tokenizer, device);
    }

    /// <summary>Loads a checkpoint folder and its tokenizer onto <paramref name="device"/>; the result owns the model.</summary>
    public static TorchM3Inference Load(string modelDir, Device device, int batchSize = 256, ComputePrecision precision = ComputePrecision.Float32)
    {
        XlmrTokenizer tokenizer;
        try
        {
            tokenizer = XlmrTokenizer.FromFolder(modelDir);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
        {
            throw new M3TrainException(e.Message, e);
        }
        var checkpoint = M3Checkpoint.Load(modelDir);
        try
        {
            checkpoint.Model.Precision = precision;
            return new TorchM3Inference(checkpoint.Model, tokenizer, device, batchSize, checkpoint);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    public XlmrTokenizer Tokenizer { get; }

    public M3Model Model => _model;

    /// <summary>False when <see cref="Load"/> found no head files and the sparse and ColBERT heads are random (the loader warns).</summary>
    public bool HeadsLoaded => _owned?.HeadsLoaded ?? true;

    public int MaxTokens => _encoder.MaxTokens;

    /// <remarks><see cref="M3Encoder"/> returns host copies only; this hands out each batch's representations, batched the same way.</remarks>
    public void ForEachBatch(IReadOnlyList<string> texts, int maxLength, Action<IReadOnlyList<int>, M3Representations> visit, ProgressDisplay? progress = null)
    {
        int[][] ids = Tokenizer.EncodeBatch(texts, Math.Min(maxLength, MaxTokens));
        _model.eval();
        using var noGrad = no_grad();
        int done = 0;
        progress?.Update(0);
        foreach (int[] rows in Enumerable.Range(0, ids.Length).OrderByDescending(i => ids[i].Length).Chunk(_batchSize))
        {
            using var scope = NewDisposeScope();
            var (inputIds, mask) = EncodedBatch.Pad(rows.Select(i => ids[i]).ToList()).ToTensors(_device); // [B, L]
            using var reps = _model.Encode(inputIds, mask);
            visit(rows, reps);
            done += rows.Length;
            progress?.Update(done);
        }
    }

    public TextEncodings Encode(IReadOnlyList<string> texts, int maxLength, EncodingParts parts, ProgressDisplay? progress = null)
    {
        int n = texts.Count, denseDim = _model.Config.HiddenSize, colbertDim = (int)_model.ColbertHead.OutputSize;
        bool dense = parts.HasFlag(EncodingParts.Dense), lexical = parts.HasFlag(EncodingParts.Lexical), colbert = parts.HasFlag(EncodingParts.Colbert);
        float[] denseData = dense ? new float[(long)n * denseDim] : [];
        var lexicalMaps = new IReadOnlyDictionary<int, float>[lexical ? n : 0];
        var vectors = new float[colbert ? n : 0][][];
        int round = _batchSize * BatchesPerRound;
        progress?.Update(0);
        for (int start = 0; start < n; start += round)
        {
            var part = _encoder.Encode(texts.Skip(start).Take(round).ToList(), maxLength, _batchSize, dense, lexical, colbert);
            for (int i = 0; i < part.Count; i++)
            {
                if (dense) part[i].Dense!.CopyTo(denseData, (long)(start + i) * denseDim);
                if (lexical) lexicalMaps[start + i] = part[i].LexicalWeights!;
                if (colbert) vectors[start + i] = part[i].ColbertVectors!;
            }
            progress?.Update(start + part.Count);
        }

        var offsets = new long[colbert ? n + 1 : 0];
        float[] colbertData = [];
        if (colbert)
        {
            for (int i = 0; i < n; i++) offsets[i + 1] = offsets[i] + vectors[i].Length;
            colbertData = new float[offsets[n] * colbertDim];
            for (int i = 0; i < n; i++)
                for (int t = 0; t < vectors[i].Length; t++) vectors[i][t].CopyTo(colbertData, (offsets[i] + t) * colbertDim);
        }
        return new TextEncodings(n, parts, denseDim, denseData, lexicalMaps, colbertDim, offsets, colbertData);
    }

    public IReadOnlyList<M3PairScores> ScorePairs(IReadOnlyList<(string Query, string Passage)> pairs, M3ScoreWeights weights,
        int maxQueryLength, int maxPassageLength, ProgressDisplay? progress = null)
    {
        var scores = new List<M3PairScores>(pairs.Count);
        int round = _batchSize * BatchesPerRound;
        progress?.Update(0);
        foreach (var chunk in pairs.Chunk(round))
        {
            scores.AddRange(_encoder.ComputeScores(chunk, weights, maxQueryLength, maxPassageLength, _batchSize));
            progress?.Update(scores.Count);
        }
        return scores;
    }

    public void Dispose() => _owned?.Dispose();
}
