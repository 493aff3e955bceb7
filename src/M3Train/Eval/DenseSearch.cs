using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// Exact top-k by inner product over dense corpus embeddings, streamed through the device in chunks so that the
/// corpus may live in host memory (or on disk, memory-mapped) and only one chunk's scores exist at a time.
/// </summary>
/// <remarks>
/// Shapes: queries [Q, d], corpus [N, d] (normalized embeddings make this cosine). Each corpus chunk goes to the
/// device once; the running top-k of every query ([Q, k] scores and indices) stays on the device and is merged
/// with each chunk's top-k; only the final [Q, k] comes back to the host. Which of several documents with the same
/// score at the k-th place are kept is up to <c>topk</c>; the returned lists are ordered by score descending,
/// then corpus index ascending.
/// </remarks>
public static class DenseSearch
{
    public static SearchHit[][] TopK(Tensor queries, Tensor corpus, int k, Device device, int corpusChunkSize = 65536, int queryBatchSize = 4096)
    {
        if (queries.dim() != 2 || corpus.dim() != 2 || queries.shape[1] != corpus.shape[1])
            throw new ArgumentException(
                $"expected queries [Q, d] and corpus [N, d], got [{string.Join(", ", queries.shape)}] and [{string.Join(", ", corpus.shape)}]");
        if (k < 1 || corpusChunkSize < 1 || queryBatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(k), "k, the chunk size and the query batch size must be positive");
        long q = queries.shape[0], n = corpus.shape[0];
        int keep = (int)Math.Min(k, n);
        if (q == 0 || keep == 0) return Enumerable.Range(0, (int)q).Select(_ => Array.Empty<SearchHit>()).ToArray();

        using var scope = NewDisposeScope();
        var deviceQueries = queries.to(device);
        var bestScores = full(q, 0, double.NegativeInfinity, dtype: ScalarType.Float32, device: device); // [Q, 0]
        var bestIndices = zeros(q, 0, dtype: ScalarType.Int64, device: device);                            // [Q, 0]
        for (long start = 0; start < n; start += corpusChunkSize)
        {
            long length = Math.Min(corpusChunkSize, n - start);
            using var chunkScope = NewDisposeScope();
            var chunk = corpus.narrow(0, start, length).to(device).to_type(deviceQueries.dtype); // [C, d]
            var scoreParts = new List<Tensor>();
            var indexParts = new List<Tensor>();
            for (long qs = 0; qs < q; qs += queryBatchSize)
            {
                long ql = Math.Min(queryBatchSize, q - qs);
                var scores = deviceQueries.narrow(0, qs, ql).matmul(chunk.t()).to_type(ScalarType.Float32); // [Qb, C]
                var (chunkScores, chunkIndices) = scores.topk((int)Math.Min(keep, length), dim: 1);        // [Qb, kc]
                var mergedScores = cat([bestScores.narrow(0, qs, ql), chunkScores], 1);                     // [Qb, k + kc]
                var mergedIndices = cat([bestIndices.narrow(0, qs, ql), chunkIndices + start], 1);
                var (top, position) = mergedScores.topk((int)Math.Min(keep, mergedScores.shape[1]), dim: 1);
                scoreParts.Add(top);
                indexParts.Add(mergedIndices.gather(1, position));
            }
            // Replace the running top-k; the previous one is dead, so free it now rather than at the end.
            var (previousScores, previousIndices) = (bestScores, bestIndices);
            bestScores = cat(scoreParts, 0).MoveToOuterDisposeScope();
            bestIndices = cat(indexParts, 0).MoveToOuterDisposeScope();
            previousScores.Dispose();
            previousIndices.Dispose();
        }

        float[] hostScores = bestScores.cpu().data<float>().ToArray();
        long[] hostIndices = bestIndices.cpu().data<long>().ToArray();
        var results = new SearchHit[q][];
        for (int row = 0; row < q; row++)
        {
            var hits = new SearchHit[keep];
            for (int j = 0; j < keep; j++) hits[j] = new SearchHit((int)hostIndices[row * keep + j], hostScores[row * keep + j]);
            Array.Sort(hits, SearchHit.ByScoreThenIndex);
            results[row] = hits;
        }
        return results;
    }
}
