using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// Dense top-k whose result depends on the encodings only: <see cref="DenseSearch"/> finds candidates on the device,
/// then their scores are recomputed on the host in double (<see cref="TextEncodings.DenseDot"/>) and ranked by score,
/// then corpus index.
/// </summary>
/// <remarks>
/// Float32 matrix products are not reproducible bit for bit: libtorch's CPU kernels were seen to return different
/// last bits for identical inputs from one call to the next, which reorders near-ties (a model whose embeddings are
/// all alike has nothing but near-ties). The device search fetches <c>k + max(16, k/4)</c> candidates, so a
/// last-bit change near rank k cannot push a document that belongs in the exact top k out of the candidates.
/// </remarks>
public static class ExactDenseSearch
{
    /// <param name="queries">Query encodings with their dense part.</param>
    /// <param name="corpus">Corpus encodings with their dense part; only the first <paramref name="corpusCount"/> are searched.</param>
    /// <param name="corpusCount">How many corpus rows to search.</param>
    /// <param name="k">Results per query.</param>
    /// <param name="device">Where the candidate search runs.</param>
    /// <param name="corpusChunkSize">Corpus rows per device chunk.</param>
    public static SearchHit[][] TopK(TextEncodings queries, TextEncodings corpus, int corpusCount, int k, Device device, int corpusChunkSize = 65536)
    {
        if (!queries.Parts.HasFlag(EncodingParts.Dense) || !corpus.Parts.HasFlag(EncodingParts.Dense))
            throw new ArgumentException("dense search needs dense encodings");
        if (corpusCount < 0 || corpusCount > corpus.Count) throw new ArgumentOutOfRangeException(nameof(corpusCount));
        int fetch = (int)Math.Min(corpusCount, (long)k + Math.Max(16, k / 4));
        SearchHit[][] candidates;
        using (var queryMatrix = tensor(queries.Dense, [queries.Count, queries.DenseDim]))    // [Q, D]
        using (var corpusMatrix = tensor(corpus.Dense, [corpus.Count, corpus.DenseDim]))      // [N', D]
        using (var searched = corpusMatrix.narrow(0, 0, corpusCount))                          // [N, D]
            candidates = DenseSearch.TopK(queryMatrix, searched, fetch, device, corpusChunkSize);
        var results = new SearchHit[queries.Count][];
        Parallel.For(0, queries.Count, q =>
            results[q] = SearchHit.Top(candidates[q].Select(h => new SearchHit(h.DocIndex, queries.DenseDot(q, corpus, h.DocIndex))), k));
        return results;
    }
}
