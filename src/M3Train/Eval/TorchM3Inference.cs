using M3Train.Checkpoints;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// <see cref="IM3Inference"/> over an <see cref="M3Model"/> on a TorchSharp device: <see cref="M3TextInference"/>'s
/// batching (the <c>encode</c> and <c>score</c> verbs' code), with progress, and the encodings written straight from
/// each batch's host copy into flat host arrays (<see cref="TextEncodings"/>).
/// </summary>
public sealed class TorchM3Inference : IM3Inference, IDisposable
{
    /// <summary>Batches per <see cref="M3TextInference.ComputeScores"/> call: pairs are sorted by length within a round, progress moves between rounds.</summary>
    const int BatchesPerRound = 16;

    readonly M3Model _model;
    readonly M3TextInference _text;
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
        _batchSize = batchSize;
        _owned = owned;
        Tokenizer = tokenizer;
        _model.to(device);
        _text = new M3TextInference(model, tokenizer, device);
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

    public int MaxTokens => _text.MaxTokens;

    public void ForEachBatch(IReadOnlyList<string> texts, int maxLength, Action<IReadOnlyList<int>, M3Representations> visit, ProgressTask? progress = null)
    {
        int done = 0;
        progress?.Update(0);
        _text.ForEachBatch(_text.Tokenize(texts, maxLength), _batchSize, EncodingParts.All, (rows, reps) =>
        {
            visit(rows, reps);
            done += rows.Length;
            progress?.Update(done);
        });
    }

    public TextEncodings Encode(IReadOnlyList<string> texts, int maxLength, EncodingParts parts, ProgressTask? progress = null)
    {
        int n = texts.Count, denseDim = _model.Config.HiddenSize, colbertDim = (int)_model.ColbertHead.OutputSize;
        bool dense = parts.HasFlag(EncodingParts.Dense), lexical = parts.HasFlag(EncodingParts.Lexical), colbert = parts.HasFlag(EncodingParts.Colbert);
        int[][] ids = _text.Tokenize(texts, maxLength);
        var unused = _model.Config.UnusedLexicalIds.Select(id => (int)id).ToHashSet();
        float[] denseData = dense ? new float[(long)n * denseDim] : [];
        var lexicalMaps = new IReadOnlyDictionary<int, float>[lexical ? n : 0];
        // Text i's multi-vectors are its tokens after <s>: the offsets are known before anything is encoded.
        var offsets = new long[colbert ? n + 1 : 0];
        for (int i = 0; colbert && i < n; i++) offsets[i + 1] = offsets[i] + ids[i].Length - 1;
        float[] colbertData = colbert ? new float[offsets[n] * colbertDim] : [];

        int done = 0;
        progress?.Update(0);
        _text.ForEachHostBatch(ids, _batchSize, parts, (rows, host) =>
        {
            for (int b = 0; b < rows.Length; b++)
            {
                int i = rows[b];
                if (dense) host.Dense(b).CopyTo(denseData.AsSpan((int)((long)i * denseDim), denseDim));
                if (lexical) lexicalMaps[i] = LexicalWeights.FromTokenWeights(ids[i], host.TokenWeights(b, ids[i].Length), unused);
                if (colbert) host.Colbert(b, ids[i].Length - 1).CopyTo(colbertData.AsSpan(checked((int)(offsets[i] * colbertDim))));
            }
            done += rows.Length;
            progress?.Update(done);
        });
        return new TextEncodings(n, parts, denseDim, denseData, lexicalMaps, colbertDim, offsets, colbertData);
    }

    public IReadOnlyList<M3PairScores> ScorePairs(IReadOnlyList<(string Query, string Passage)> pairs, M3ScoreWeights weights,
        int maxQueryLength, int maxPassageLength, ProgressTask? progress = null)
    {
        var scores = new List<M3PairScores>(pairs.Count);
        int round = _batchSize * BatchesPerRound;
        progress?.Update(0);
        foreach (var chunk in pairs.Chunk(round))
        {
            scores.AddRange(_text.ComputeScores(chunk, weights, maxQueryLength, maxPassageLength, _batchSize));
            progress?.Update(scores.Count);
        }
        return scores;
    }

    public void Dispose() => _owned?.Dispose();
}
