using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Query × passage score matrices of the three M3 representations (docs/METHOD.md, "Scores"), differentiable.
/// Shapes: Nq queries, Np passages, L tokens, D hidden, D' multi-vector size. All scores fp32 and not
/// divided by a temperature (the losses do that).
/// </summary>
public static class M3Scores
{
    /// <summary>Default bound on the elements of one chunk of multi-vector token scores (Nq·Lq·chunk·Lp), 2^26 (256 MB fp32).</summary>
    public const long DefaultColbertChunkElements = 1L << 26;

    /// <summary>⟨e_q, e_p⟩: q [Nq, D], p [Np, D] → [Nq, Np].</summary>
    public static Tensor Dense(Tensor q, Tensor p) => q.matmul(p.transpose(0, 1));

    /// <summary>
    /// Lexical score Σ_t w_q(t)·w_p(t) with w(t) the max token weight of id t in a text:
    /// ids [N, L] int64 and weights [N, L] per side → [Nq, Np]. Equal in value and gradient to
    /// FlagEmbedding's [N, L, V] scatter + max-pool (a repeated id's gradient reaches only its max
    /// occurrence), but nothing grows with V: only ids that occur in some query can score, so each side is
    /// pooled into one slot per query token position (S = Nq·Lq slots, plus one slot for passage ids no
    /// query has) and the scores are one [Nq, S+1] × [S+1, Np] product. Every shape is known on the host, so
    /// nothing is read back from the device (unlike compacting with <c>unique</c>, whose size the host must wait for).
    /// </summary>
    public static Tensor Sparse(Tensor qIds, Tensor qWeights, Tensor pIds, Tensor pWeights)
    {
        using var scope = NewDisposeScope();
        var (qBag, pBag) = Bags(qIds, qWeights, pIds, pWeights);
        return qBag.matmul(pBag.transpose(0, 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Both sides' max-per-id weights as rows over S+1 slots ([Nq, S+1], [Np, S+1]): one per query token
    /// position (an id takes the slot of its first position among the sorted query ids) and one last slot for
    /// passage ids no query holds, which no query row fills. V never appears, and S = Nq·Lq is known on the host.
    /// </summary>
    static (Tensor QueryBag, Tensor PassageBag) Bags(Tensor qIds, Tensor qWeights, Tensor pIds, Tensor pWeights)
    {
        var (qSorted, qPooled) = MaxPerId(qIds, qWeights);
        var (pSorted, pPooled) = MaxPerId(pIds, pWeights);
        var (queryIds, _) = qSorted.flatten().sort(); // [S]
        long slots = queryIds.shape[0];
        var qBag = zeros(qSorted.shape[0], slots + 1, dtype: qPooled.dtype, device: qPooled.device)
            .scatter_add(1, SlotOf(qSorted, queryIds), qPooled); // [Nq, S+1]
        var pBag = zeros(pSorted.shape[0], slots + 1, dtype: pPooled.dtype, device: pPooled.device)
            .scatter_add(1, SlotOf(pSorted, queryIds), pPooled); // [Np, S+1]
        return (qBag, pBag);
    }

    /// <summary>
    /// The slot of each id [N, L]: the first position of the id in the sorted query ids [S] (the same for
    /// every occurrence, in any text), or S when no query holds it.
    /// </summary>
    static Tensor SlotOf(Tensor ids, Tensor sortedQueryIds)
    {
        long slots = sortedQueryIds.shape[0];
        var first = searchsorted(sortedQueryIds, ids).clamp_max(slots - 1); // [N, L]
        var found = sortedQueryIds.take(first).eq(ids);
        return first.masked_fill(found.logical_not(), slots);
    }

    /// <summary>
    /// Per text, the max weight of each distinct id: ids [N, L], weights [N, L] → (ids sorted [N, L],
    /// weights [N, L]) where the first position of each id's run holds that id's max weight and the
    /// other positions 0. Sorting by weight (descending, stable) and then by id (stable) puts each id's
    /// max occurrence first, the earliest one on ties, like <c>torch.max</c>; gradients flow through the
    /// sorts back to exactly that occurrence.
    /// </summary>
    public static (Tensor SortedIds, Tensor Pooled) MaxPerId(Tensor ids, Tensor weights)
    {
        using var scope = NewDisposeScope();
        var (byWeight, weightOrder) = weights.sort(dim: -1, descending: true, stable: true);
        var idsByWeight = ids.gather(-1, weightOrder);
        var (sortedIds, idOrder) = idsByWeight.sort(dim: -1, stable: true);
        var sortedWeights = byWeight.gather(-1, idOrder); // [N, L]
        var first = ones_like(sortedIds, dtype: ScalarType.Bool);
        first[.., 1..] = sortedIds[.., 1..].ne(sortedIds[.., ..^1]);
        var pooled = sortedWeights * first; // [N, L]
        return (sortedIds.MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Multi-vector score (Σ_i max_j q_i·p_j) / (number of query tokens after CLS): q [Nq, Lq-1, D'],
    /// qMask [Nq, Lq-1] (1 = token), p [Np, Lp-1, D'] → [Nq, Np]. Without <paramref name="pMask"/>, a
    /// passage's zero padding rows take part in the max with score 0, as in FlagEmbedding's training loss
    /// and <c>compute_score</c>; with it they are left out, as in its per-pair <c>colbert_score</c> (the two
    /// differ only when every real token of a passage scores below 0 against a query token). Passages are
    /// processed in chunks so the [Nq, Lq, chunk, Lp] token scores stay under <paramref name="chunkElements"/>.
    /// </summary>
    public static Tensor Colbert(Tensor q, Tensor qMask, Tensor p, Tensor? pMask = null, long chunkElements = DefaultColbertChunkElements)
    {
        using var scope = NewDisposeScope();
        long nq = q.shape[0], lq = q.shape[1], d = q.shape[2];
        long np = p.shape[0], lp = p.shape[1];
        var queries = q.reshape(nq * lq, d); // [Nq·Lq, D']
        long chunk = Math.Max(1, chunkElements / Math.Max(1, nq * lq * lp));
        var parts = new List<Tensor>();
        for (long start = 0; start < np; start += chunk)
        {
            long n = Math.Min(chunk, np - start);
            var passages = p.narrow(0, start, n).reshape(n * lp, d); // [n·Lp, D']
            var tokenScores = queries.matmul(passages.transpose(0, 1)).view(nq, lq, n, lp); // [Nq, Lq, n, Lp]
            if (pMask is not null)
            {
                var padding = pMask.narrow(0, start, n).eq(0).view(1, 1, n, lp);
                tokenScores = tokenScores.masked_fill(padding, float.NegativeInfinity);
            }
            parts.Add(tokenScores.max(-1).values.sum(1)); // [Nq, n]
        }
        var sums = cat(parts, 1); // [Nq, Np]
        var counts = qMask.sum(-1, keepdim: true, type: ScalarType.Float32); // [Nq, 1]
        return (sums / counts).MoveToOuterDisposeScope();
    }

    /// <summary>Per-pair dense score of row i with row i: q [N, D], p [N, D] → [N].</summary>
    public static Tensor DensePairs(Tensor q, Tensor p) => (q * p).sum(-1);

    /// <summary>Per-pair lexical score of text i with text i (ids and weights [N, L] per side) → [N]; memory as <see cref="Sparse(Tensor, Tensor, Tensor, Tensor)"/>.</summary>
    public static Tensor SparsePairs(Tensor qIds, Tensor qWeights, Tensor pIds, Tensor pWeights)
    {
        using var scope = NewDisposeScope();
        var (qBag, pBag) = Bags(qIds, qWeights, pIds, pWeights);
        return (qBag * pBag).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per-pair multi-vector score of query i with passage i: q [N, Lq-1, D'], qMask [N, Lq-1], p [N, Lp-1, D'],
    /// pMask [N, Lp-1] or null → [N], with the padding semantics of <see cref="Colbert(Tensor, Tensor, Tensor, Tensor?, long)"/>.
    /// </summary>
    public static Tensor ColbertPairs(Tensor q, Tensor qMask, Tensor p, Tensor? pMask = null)
    {
        using var scope = NewDisposeScope();
        var tokenScores = q.bmm(p.transpose(1, 2)); // [N, Lq-1, Lp-1]
        if (pMask is not null) tokenScores = tokenScores.masked_fill(pMask.eq(0).unsqueeze(1), float.NegativeInfinity);
        var sums = tokenScores.max(-1).values.sum(1); // [N]
        return (sums / qMask.sum(-1, type: ScalarType.Float32)).MoveToOuterDisposeScope();
    }

    /// <summary>Dense scores of two sets of representations.</summary>
    public static Tensor Dense(M3Representations q, M3Representations p) => Dense(q.Dense, p.Dense);

    /// <summary>Lexical scores of two sets of representations (both encoded with their lexical part).</summary>
    public static Tensor Sparse(M3Representations q, M3Representations p) =>
        Sparse(Part(q.InputIds, "lexical"), Part(q.TokenWeights, "lexical"), Part(p.InputIds, "lexical"), Part(p.TokenWeights, "lexical"));

    /// <summary>Multi-vector scores of two sets of representations (both encoded with their multi-vector part), training semantics (padding rows score 0).</summary>
    public static Tensor Colbert(M3Representations q, M3Representations p) =>
        Colbert(Part(q.ColbertVectors, "multi-vector"), Part(q.ColbertMask, "multi-vector"), Part(p.ColbertVectors, "multi-vector"));

    static Tensor Part(Tensor? part, string name) =>
        part ?? throw new ArgumentException($"the representations were encoded without their {name} part");
}
