using M3Train.Model;
using M3Train.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// Multi-vector scores of one query against some documents from host encodings, computed on a device with
/// <see cref="M3Scores.Colbert"/>: <c>Σ_i max_j q_i·p_j / (query tokens)</c>, over the documents' real tokens only
/// (FlagEmbedding's <c>colbert_score</c> on <c>encode</c> output, which has no padding rows). The products run in
/// float64: float32 products differ in their last bits from call to call on the same input (see
/// <see cref="ExactDenseSearch"/>), which would reorder near-tied candidates between runs.
/// </summary>
public static class ColbertScorer
{
    /// <summary>Bound on the padded document vectors copied to the device at once (floats), 2^24 (64 MB).</summary>
    public const long ChunkElements = 1L << 24;

    /// <returns>One score per entry of <paramref name="docIndices"/>, in order.</returns>
    public static double[] Score(TextEncodings queries, int query, TextEncodings docs, IReadOnlyList<int> docIndices, Device device,
        long chunkElements = ChunkElements)
    {
        if (!queries.Parts.HasFlag(EncodingParts.Colbert) || !docs.Parts.HasFlag(EncodingParts.Colbert))
            throw new ArgumentException("multi-vector scores need encodings with their ColBERT vectors");
        int dim = docs.ColbertDim;
        var scores = new double[docIndices.Count];
        if (docIndices.Count == 0) return scores;
        using var scope = NewDisposeScope();
        int queryTokens = queries.ColbertTokens(query);
        var q = tensor(queries.ColbertOf(query).ToArray(), [1, queryTokens, dim]).to(device).to_type(ScalarType.Float64); // [1, Lq, D']
        var qMask = ones(1, queryTokens, dtype: ScalarType.Int64, device: device);            // [1, Lq]
        int start = 0;
        while (start < docIndices.Count)
        {
            // Documents of one chunk, padded to the longest of them.
            int end = start, longest = 0;
            while (end < docIndices.Count)
            {
                int candidateLongest = Math.Max(longest, docs.ColbertTokens(docIndices[end]));
                if (end > start && (long)(end - start + 1) * candidateLongest * dim > chunkElements) break;
                longest = candidateLongest;
                end++;
            }
            int n = end - start;
            var vectors = new float[(long)n * longest * dim];
            var mask = new long[n * longest];
            for (int i = 0; i < n; i++)
            {
                int doc = docIndices[start + i];
                docs.ColbertOf(doc).CopyTo(vectors.AsSpan(i * longest * dim));
                mask.AsSpan(i * longest, docs.ColbertTokens(doc)).Fill(1);
            }
            using var chunkScope = NewDisposeScope();
            var p = tensor(vectors, [n, longest, dim]).to(device).to_type(ScalarType.Float64); // [n, Lp, D']
            var pMask = tensor(mask, [n, longest]).to(device);             // [n, Lp]
            var chunkScores = M3Scores.Colbert(q, qMask, p, pMask).to_type(ScalarType.Float64).cpu(); // [1, n]
            double[] values = chunkScores.data<double>().ToArray();
            for (int i = 0; i < n; i++) scores[start + i] = values[i];
            start = end;
        }
        return scores;
    }
}
