using M3Train.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Inference with the semantics of FlagEmbedding's <c>BGEM3FlagModel</c> (spec section 5): texts are
/// tokenized with truncation, sorted by length (longest first) into batches so little is padded, encoded
/// in eval mode without gradients, and returned in input order.
/// </summary>
public sealed class M3Encoder
{
    readonly M3Model _model;
    readonly XlmrTokenizer _tokenizer;
    readonly Device _device;
    readonly HashSet<int> _unusedIds;

    /// <param name="model">The model; it is switched to eval mode and used on <paramref name="device"/> (move it there first).</param>
    public M3Encoder(M3Model model, XlmrTokenizer tokenizer, Device device)
    {
        _model = model;
        _tokenizer = tokenizer;
        _device = device;
        _unusedIds = model.Config.UnusedLexicalIds.Select(id => (int)id).ToHashSet();
        model.eval();
    }

    /// <summary>The longest input the model's position table allows (positions start after the padding index).</summary>
    public int MaxTokens => _model.Config.MaxPositionEmbeddings - _model.Config.PadTokenId - 1;

    /// <summary>
    /// Encodes <paramref name="texts"/>; <paramref name="maxLength"/> counts &lt;s&gt; and &lt;/s&gt; and is
    /// capped at <see cref="MaxTokens"/>. Only the requested parts are computed and copied to the host.
    /// </summary>
    public IReadOnlyList<M3TextEncoding> Encode(IReadOnlyList<string> texts, int maxLength = 512, int batchSize = 256,
        bool dense = true, bool lexical = false, bool colbert = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        int[][] ids = _tokenizer.EncodeBatch(texts, Math.Min(maxLength, MaxTokens));
        var results = new M3TextEncoding[texts.Count];
        foreach (int[] batch in LongestFirstBatches(ids, batchSize))
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var reps = Run(batch.Select(i => ids[i]).ToList());
            float[]? denseRows = dense ? reps.Dense.cpu().data<float>().ToArray() : null;
            float[]? weights = lexical ? reps.TokenWeights.cpu().data<float>().ToArray() : null;
            long d = reps.Dense.shape[1], length = reps.InputIds.shape[1];
            for (int b = 0; b < batch.Length; b++)
            {
                int[] tokens = ids[batch[b]];
                results[batch[b]] = new M3TextEncoding(
                    denseRows?.AsSpan((int)(b * d), (int)d).ToArray(),
                    weights is null ? null : Text.LexicalWeights.FromTokenWeights(tokens, weights.AsSpan((int)(b * length), tokens.Length), _unusedIds),
                    colbert ? ColbertRows(reps.ColbertVectors[b], tokens.Length - 1) : null);
            }
        }
        return results;
    }

    /// <summary>
    /// <c>compute_score</c> of (query, passage) pairs, in input order. Multi-vector scores leave passage padding
    /// out of the max (FlagEmbedding's batched <c>compute_score</c> lets zero padding rows score 0, which makes a
    /// score depend on the other texts of its batch whenever all of a token's similarities are negative).
    /// </summary>
    public IReadOnlyList<M3PairScores> ComputeScores(IReadOnlyList<(string Query, string Passage)> pairs, M3ScoreWeights? weights = null,
        int maxQueryLength = 512, int maxPassageLength = 512, int batchSize = 256)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        weights ??= new M3ScoreWeights();
        int[][] queries = _tokenizer.EncodeBatch(pairs.Select(p => p.Query).ToList(), Math.Min(maxQueryLength, MaxTokens));
        int[][] passages = _tokenizer.EncodeBatch(pairs.Select(p => p.Passage).ToList(), Math.Min(maxPassageLength, MaxTokens));
        var results = new M3PairScores[pairs.Count];
        foreach (int[] batch in LongestFirstBatches(passages, batchSize))
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var q = Run(batch.Select(i => queries[i]).ToList());
            var p = Run(batch.Select(i => passages[i]).ToList());
            var dense = M3Scores.DensePairs(q.Dense, p.Dense);
            var sparse = M3Scores.SparsePairs(q.InputIds, q.TokenWeights, p.InputIds, p.TokenWeights);
            var colbert = M3Scores.ColbertPairs(q.ColbertVectors, q.ColbertMask, p.ColbertVectors, p.ColbertMask);
            var all = stack([dense, sparse, colbert], 1).cpu().data<float>().ToArray(); // [N, 3]
            for (int b = 0; b < batch.Length; b++)
            {
                float d = all[3 * b], s = all[3 * b + 1], c = all[3 * b + 2];
                results[batch[b]] = new M3PairScores(d, s, c,
                    (float)((weights.Sparse * s + weights.Dense * d) / (weights.Sparse + weights.Dense)),
                    (float)((weights.Dense * d + weights.Sparse * s + weights.Colbert * c) / (weights.Dense + weights.Sparse + weights.Colbert)));
            }
        }
        return results;
    }

    M3Representations Run(IReadOnlyList<int[]> rows)
    {
        var (ids, mask) = EncodedBatch.Pad(rows).ToTensors(_device);
        return _model.Encode(ids, mask);
    }

    /// <summary>Indices of <paramref name="ids"/> in batches of at most <paramref name="batchSize"/>, longest texts first (stable).</summary>
    static IEnumerable<int[]> LongestFirstBatches(int[][] ids, int batchSize) =>
        Enumerable.Range(0, ids.Length).OrderByDescending(i => ids[i].Length).Chunk(batchSize);

    /// <summary>The first <paramref name="count"/> rows of one text's vectors [L-1, D'] (the rest is padding), copied per text to keep host arrays small.</summary>
    static float[][] ColbertRows(Tensor vectors, int count)
    {
        long d = vectors.shape[1];
        float[] flat = vectors.narrow(0, 0, count).cpu().data<float>().ToArray();
        var result = new float[count][];
        for (int t = 0; t < count; t++)
            result[t] = flat.AsSpan((int)(t * d), (int)d).ToArray();
        return result;
    }
}
