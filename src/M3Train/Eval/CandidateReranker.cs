namespace M3Train.Eval;

/// <summary>
/// Re-ranks one query's candidate list (the dense top-<c>rerank-k</c>, as in the BGE-M3 paper) by a weighted sum
/// of scores: <c>colbert</c> mode is the multi-vector score alone, <c>all</c> is
/// <c>w_d·dense + w_s·sparse + w_c·colbert</c> (paper weights 1, 0.3, 1).
/// </summary>
public static class CandidateReranker
{
    /// <summary>Each callback is called once with all candidate indices; results: score descending, then corpus index ascending.</summary>
    public static SearchHit[] Rerank(IReadOnlyList<SearchHit> candidates, int k, params IReadOnlyList<RerankTerm> terms)
    {
        if (terms.Count == 0) throw new ArgumentException("re-ranking needs at least one score");
        var indices = candidates.Select(c => c.DocIndex).ToArray();
        var total = new double[indices.Length];
        foreach (var term in terms)
        {
            double[] scores = term.Scorer is null ? candidates.Select(c => c.Score).ToArray() : term.Scorer(indices);
            if (scores.Length != indices.Length)
                throw new ArgumentException($"a re-ranking scorer returned {scores.Length} scores for {indices.Length} candidates");
            for (int i = 0; i < total.Length; i++) total[i] += term.Weight * scores[i];
        }
        return SearchHit.Top(indices.Select((doc, i) => new SearchHit(doc, total[i])), k);
    }

    /// <summary>ColBERT re-ranking: the candidates ordered by the multi-vector score alone.</summary>
    public static SearchHit[] Colbert(IReadOnlyList<SearchHit> candidates, int k, Func<IReadOnlyList<int>, double[]> colbertScores) =>
        Rerank(candidates, k, RerankTerm.Of(1.0, colbertScores));
}
