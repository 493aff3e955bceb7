namespace M3Train.Eval;

/// <summary>
/// Weighted-sum fusion of candidate lists (the <c>dense+sparse</c> mode): every document in any list gets
/// <c>Σ_m w_m · s_m(doc)</c>, where a list that lacks the document contributes its <see cref="MissingScore"/>.
/// </summary>
/// <remarks>
/// BGE-M3's <c>compute_score</c> divides by the weight sum, <c>(w_s·s + w_d·d)/(w_s + w_d)</c>; that only rescales,
/// so the ranking is the same and the plain sum is kept. Results: score descending, then corpus index ascending.
/// </remarks>
public static class ScoreFusion
{
    public static SearchHit[] WeightedSum(IReadOnlyList<(IReadOnlyList<SearchHit> Hits, double Weight)> lists, int k,
        MissingScore missing = MissingScore.ListMinimum)
    {
        var byList = lists.Select(l => l.Hits.ToDictionary(h => h.DocIndex, h => h.Score)).ToArray();
        var fill = lists.Select(l => missing == MissingScore.ListMinimum && l.Hits.Count > 0 ? l.Hits.Min(h => h.Score) : 0.0).ToArray();
        var docs = byList.SelectMany(d => d.Keys).Distinct();
        var fused = docs.Select(doc =>
        {
            double score = 0;
            for (int m = 0; m < lists.Count; m++)
                score += lists[m].Weight * (byList[m].TryGetValue(doc, out double s) ? s : fill[m]);
            return new SearchHit(doc, score);
        });
        return SearchHit.Top(fused, k);
    }
}
