using M3Train.Checkpoints;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// <see cref="IM3Inference"/> over an <see cref="M3Model"/> on a TorchSharp device: texts are tokenized, sorted
/// longest first (as FlagEmbedding's <c>encode</c>, so each batch pads little), run without gradients in eval mode,
/// and the results put back in input order. Lexical weights follow FlagEmbedding's inference: per id the largest
/// weight, special ids and weights ≤ 0 left out.
/// </summary>
public sealed class TorchM3Inference : IM3Inference, IDisposable
{
    readonly M3Model _model;
    readonly Device _device;
    readonly int _batchSize;
    readonly HashSet<long> _specialIds;
    readonly M3Checkpoint? _owned;

    /// <param name="model">The model; it is moved to <paramref name="device"/> and put in eval mode.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="device">Where batches run.</param>
    /// <param name="batchSize">Texts per forward pass.</param>
    public TorchM3Inference(M3Model model, XlmrTokenizer tokenizer, Device device, int batchSize = 32)
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
        _specialIds = model.Config.UnusedLexicalIds.ToHashSet();
        Tokenizer = tokenizer;
        _model.to(device);
        _model.eval();
    }

    /// <summary>Loads a checkpoint folder and its tokenizer; the result owns the model.</summary>
    public static TorchM3Inference Load(string modelDir, Device device, int batchSize = 32)
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
            if (tokenizer.VocabSize > checkpoint.Config.VocabSize)
                throw new M3TrainException($"{modelDir}: the tokenizer has {tokenizer.VocabSize} ids but config.json's vocab_size is {checkpoint.Config.VocabSize}");
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

    /// <summary>Position ids start at pad + 1, so the table takes max_position_embeddings - pad - 1 tokens.</summary>
    public int MaxTokens => _model.Config.MaxPositionEmbeddings - _model.Config.PadTokenId - 1;

    public void ForEachBatch(IReadOnlyList<string> texts, int maxLength, Action<IReadOnlyList<int>, M3Representations> visit, ProgressDisplay? progress = null)
    {
        if (maxLength < 2 || maxLength > MaxTokens)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"must be 2..{MaxTokens} (the model's position table)");
        int[][] ids = Tokenizer.EncodeBatch(texts, maxLength);
        int[] order = Enumerable.Range(0, ids.Length).OrderByDescending(i => ids[i].Length).ToArray();
        _model.eval();
        using var noGrad = no_grad();
        int done = 0;
        progress?.Update(0);
        foreach (int[] rows in order.Chunk(_batchSize))
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
        int n = texts.Count, denseDim = _model.Config.HiddenSize;
        int colbertDim = (int)_model.ColbertHead.OutputSize;
        float[] dense = parts.HasFlag(EncodingParts.Dense) ? new float[(long)n * denseDim] : [];
        var lexical = new IReadOnlyDictionary<int, float>[parts.HasFlag(EncodingParts.Lexical) ? n : 0];
        var colbert = new float[parts.HasFlag(EncodingParts.Colbert) ? n : 0][];
        ForEachBatch(texts, maxLength, (rows, reps) =>
        {
            if (parts.HasFlag(EncodingParts.Dense))
            {
                float[] values = HostFloats(reps.Dense); // [B, D]
                for (int r = 0; r < rows.Count; r++) Array.Copy(values, r * denseDim, dense, (long)rows[r] * denseDim, denseDim);
            }
            if (parts.HasFlag(EncodingParts.Lexical))
            {
                float[] weights = HostFloats(reps.TokenWeights); // [B, L]
                using var idsCpu = reps.InputIds.cpu();
                long[] tokenIds = idsCpu.data<long>().ToArray();
                int length = (int)reps.InputIds.shape[1];
                for (int r = 0; r < rows.Count; r++) lexical[rows[r]] = LexicalOf(tokenIds.AsSpan(r * length, length), weights.AsSpan(r * length, length));
            }
            if (parts.HasFlag(EncodingParts.Colbert))
            {
                float[] vectors = HostFloats(reps.ColbertVectors); // [B, L-1, D']
                using var countsCpu = reps.ColbertMask.sum(1).cpu();
                long[] tokens = countsCpu.data<long>().ToArray();
                long stride = reps.ColbertVectors.shape[1] * colbertDim;
                // Right padding: a text's real tokens are its first rows.
                for (int r = 0; r < rows.Count; r++) colbert[rows[r]] = vectors.AsSpan((int)(r * stride), (int)(tokens[r] * colbertDim)).ToArray();
            }
        }, progress);

        var offsets = new long[parts.HasFlag(EncodingParts.Colbert) ? n + 1 : 0];
        float[] colbertData = [];
        if (parts.HasFlag(EncodingParts.Colbert))
        {
            for (int i = 0; i < n; i++) offsets[i + 1] = offsets[i] + colbert[i].Length / colbertDim;
            colbertData = new float[offsets[n] * colbertDim];
            for (int i = 0; i < n; i++) colbert[i].CopyTo(colbertData, offsets[i] * colbertDim);
        }
        return new TextEncodings(n, parts, denseDim, dense, lexical, colbertDim, offsets, colbertData);
    }

    /// <summary>FlagEmbedding's <c>_process_token_weights</c>: per id the largest weight; special ids and weights ≤ 0 skipped.</summary>
    Dictionary<int, float> LexicalOf(ReadOnlySpan<long> ids, ReadOnlySpan<float> weights)
    {
        var result = new Dictionary<int, float>();
        for (int i = 0; i < ids.Length; i++)
        {
            float w = weights[i];
            if (w <= 0 || _specialIds.Contains(ids[i])) continue;
            int id = (int)ids[i];
            if (!result.TryGetValue(id, out float seen) || w > seen) result[id] = w;
        }
        return result;
    }

    static float[] HostFloats(Tensor t)
    {
        using var host = t.to_type(ScalarType.Float32).cpu().contiguous();
        return host.data<float>().ToArray();
    }

    public void Dispose() => _owned?.Dispose();
}
