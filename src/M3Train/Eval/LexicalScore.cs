namespace M3Train.Eval;

/// <summary>
/// BGE-M3's lexical matching score (docs/METHOD.md, "Inference"): <c>Σ over token ids in both texts of w_q(t)·w_p(t)</c>,
/// accumulated in double in the query's token order (the order <see cref="SparseInvertedIndex"/> also uses).
/// </summary>
public static class LexicalScore
{
    public static double Of(IReadOnlyDictionary<int, float> query, IReadOnlyDictionary<int, float> document)
    {
        double score = 0;
        foreach (var (token, weight) in query)
            if (document.TryGetValue(token, out float other)) score += (double)weight * other;
        return score;
    }
}
