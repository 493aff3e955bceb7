namespace M3Train.Eval;

/// <summary>Turns search hits into the run format <see cref="RetrievalMetrics.Evaluate"/> takes.</summary>
public static class RetrievalRun
{
    /// <param name="queryIds">Ids of the queries, in the order of <paramref name="hits"/>.</param>
    /// <param name="hits">Per query, its hits (document indices into <paramref name="docIds"/>).</param>
    /// <param name="docIds">Corpus document ids by index.</param>
    public static IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> FromHits(
        IReadOnlyList<string> queryIds, IReadOnlyList<IReadOnlyList<SearchHit>> hits, IReadOnlyList<string> docIds)
    {
        if (queryIds.Count != hits.Count)
            throw new ArgumentException($"{queryIds.Count} query ids for {hits.Count} hit lists");
        var run = new Dictionary<string, IReadOnlyDictionary<string, double>>(StringComparer.Ordinal);
        for (int q = 0; q < queryIds.Count; q++)
            run[queryIds[q]] = hits[q].ToDictionary(h => docIds[h.DocIndex], h => h.Score, StringComparer.Ordinal);
        return run;
    }
}
