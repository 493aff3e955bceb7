using M3Train.Model;
using M3Train.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// Text inference with an <see cref="M3Model"/>, with the semantics of FlagEmbedding's <c>BGEM3FlagModel</c>: texts
/// are tokenized with truncation, batched longest first (<see cref="LengthBatches"/>) so little is padded, encoded in
/// eval mode without gradients, and returned in input order. Only the requested parts are computed; each batch's come
/// to the host in one copy (<see cref="HostRepresentations"/>) and are read from it straight into the results.
/// </summary>
public sealed class M3TextInference
{
    readonly M3Model _model;
    readonly XlmrTokenizer _tokenizer;
    readonly Device _device;
    readonly HashSet<int> _unusedIds;

    /// <param name="model">The model; it is switched to eval mode and used on <paramref name="device"/> (move it there first).</param>
    public M3TextInference(M3Model model, XlmrTokenizer tokenizer, Device device)
    {
        _model = model;
        _tokenizer = tokenizer;
        _device = device;
        _unusedIds = model.Config.UnusedLexicalIds.Select(id => (int)id).ToHashSet();
        model.eval();
    }

    /// <summary>The longest input the model's position table allows.</summary>
    public int MaxTokens => _model.Config.MaxTokens;

    /// <summary>Token ids of <paramref name="texts"/>, truncated to <paramref name="maxLength"/> (capped at <see cref="MaxTokens"/>; &lt;s&gt; and &lt;/s&gt; count).</summary>
    public int[][] Tokenize(IReadOnlyList<string> texts, int maxLength) => _tokenizer.EncodeBatch(texts, Math.Min(maxLength, MaxTokens));

    /// <summary>
    /// Encodes <paramref name="texts"/>; <paramref name="maxLength"/> counts &lt;s&gt; and &lt;/s&gt; and is
    /// capped at <see cref="MaxTokens"/>.
    /// </summary>
    public IReadOnlyList<M3TextEncoding> Encode(IReadOnlyList<string> texts, int maxLength = 512, int batchSize = 256,
        bool dense = true, bool lexical = false, bool colbert = false)
    {
        var parts = (dense ? EncodingParts.Dense : 0) | (lexical ? EncodingParts.Lexical : 0) | (colbert ? EncodingParts.Colbert : 0);
        int[][] ids = Tokenize(texts, maxLength);
        var results = new M3TextEncoding[texts.Count];
        ForEachHostBatch(ids, batchSize, parts, (rows, host) =>
        {
            for (int b = 0; b < rows.Length; b++)
            {
                int[] tokens = ids[rows[b]];
                results[rows[b]] = new M3TextEncoding(
                    dense ? host.Dense(b).ToArray() : null,
                    lexical ? LexicalWeights.FromTokenWeights(tokens, host.TokenWeights(b, tokens.Length), _unusedIds) : null,
                    colbert ? ColbertRows(host, b, tokens.Length - 1) : null);
            }
        });
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
        int[][] queries = Tokenize(pairs.Select(p => p.Query).ToList(), maxQueryLength);
        int[][] passages = Tokenize(pairs.Select(p => p.Passage).ToList(), maxPassageLength);
        var results = new M3PairScores[pairs.Count];
        using var noGrad = no_grad();
        foreach (int[] batch in LengthBatches.LongestFirst(passages.Select(p => p.Length).ToList(), batchSize))
        {
            using var scope = NewDisposeScope();
            var q = Run(batch.Select(i => queries[i]).ToList(), EncodingParts.All);
            var p = Run(batch.Select(i => passages[i]).ToList(), EncodingParts.All);
            var dense = M3Scores.DensePairs(q.Dense, p.Dense);
            var sparse = M3Scores.SparsePairs(q.InputIds!, q.TokenWeights!, p.InputIds!, p.TokenWeights!);
            var colbert = M3Scores.ColbertPairs(q.ColbertVectors!, q.ColbertMask!, p.ColbertVectors!, p.ColbertMask);
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

    /// <summary>
    /// Runs the model over tokenized texts in longest-first batches of at most <paramref name="batchSize"/> and hands
    /// each batch's representations (its <paramref name="parts"/>), with the indices of its texts, to <paramref name="visit"/>;
    /// they are disposed after the call returns.
    /// </summary>
    public void ForEachBatch(IReadOnlyList<int[]> ids, int batchSize, EncodingParts parts, Action<int[], M3Representations> visit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _model.eval();
        using var noGrad = no_grad();
        foreach (int[] rows in LengthBatches.LongestFirst(ids.Select(t => t.Length).ToList(), batchSize))
        {
            using var scope = NewDisposeScope();
            using var reps = Run(rows.Select(i => ids[i]).ToList(), parts);
            visit(rows, reps);
        }
    }

    /// <summary><see cref="ForEachBatch"/> with each batch's <paramref name="parts"/> copied to the host in one transfer.</summary>
    public void ForEachHostBatch(IReadOnlyList<int[]> ids, int batchSize, EncodingParts parts, Action<int[], HostRepresentations> visit) =>
        ForEachBatch(ids, batchSize, parts, (rows, reps) => visit(rows, HostRepresentations.Copy(reps, parts)));

    M3Representations Run(IReadOnlyList<int[]> rows, EncodingParts parts)
    {
        var batch = EncodedBatch.Pad(rows);
        var (ids, mask) = batch.ToTensors(_device); // [B, L]
        return _model.Encode(ids, mask, hasPadding: batch.HasPadding(), parts: parts);
    }

    /// <summary>Text <paramref name="row"/>'s <paramref name="count"/> multi-vectors (the rest of its row is padding), one array per token.</summary>
    static float[][] ColbertRows(HostRepresentations host, int row, int count)
    {
        var flat = host.Colbert(row, count);
        int d = host.ColbertDim;
        var result = new float[count][];
        for (int t = 0; t < count; t++) result[t] = flat.Slice(t * d, d).ToArray();
        return result;
    }
}
