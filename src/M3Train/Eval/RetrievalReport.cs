namespace M3Train.Eval;

/// <summary>
/// Mean retrieval metrics of one run (<see cref="RetrievalMetrics.Evaluate"/>), over the queries that have at
/// least one relevant document.
/// </summary>
/// <param name="NdcgAt10">Mean nDCG@10.</param>
/// <param name="RecallAt100">Mean Recall@100.</param>
/// <param name="MrrAt10">Mean reciprocal rank of the first relevant document within the top 10.</param>
/// <param name="QueriesEvaluated">Queries in the means.</param>
/// <param name="QueriesWithoutRelevant">Queries in the qrels with no relevant document: left out of the means.</param>
/// <param name="QueriesWithoutResults">Evaluated queries the run has no results for: they score 0.</param>
public sealed record RetrievalReport(
    double NdcgAt10,
    double RecallAt100,
    double MrrAt10,
    int QueriesEvaluated,
    int QueriesWithoutRelevant,
    int QueriesWithoutResults);
