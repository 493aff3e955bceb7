namespace M3Train.Eval;

/// <summary>A retrieved document: its index in the corpus list and its score for the query.</summary>
public readonly record struct SearchHit(int DocIndex, double Score)
{
    /// <summary>Result order of the searches here: score descending, then corpus index ascending.</summary>
    public static int ByScoreThenIndex(SearchHit a, SearchHit b)
    {
        int byScore = b.Score.CompareTo(a.Score);
        return byScore != 0 ? byScore : a.DocIndex.CompareTo(b.DocIndex);
    }

    /// <summary>The best <paramref name="k"/> of <paramref name="hits"/> in <see cref="ByScoreThenIndex"/> order.</summary>
    public static SearchHit[] Top(IEnumerable<SearchHit> hits, int k)
    {
        var all = hits.ToArray();
        Array.Sort(all, ByScoreThenIndex);
        return all.Length <= k ? all : all[..k];
    }
}
