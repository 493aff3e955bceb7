namespace M3Train.Eval;

/// <summary>
/// nDCG@k, Recall@k and MRR@k as trec_eval / pytrec_eval compute them (BEIR reports these), with the rules
/// for ties and empty judgments stated here.
/// </summary>
/// <remarks>
/// <para><b>Ranking and ties</b>: documents are ordered by score, highest first; equal scores are ordered by
/// document id in <b>descending</b> ordinal order. That is trec_eval's rule (it sorts by <c>sim</c>, then
/// <c>strcmp(docno2, docno1)</c>), so the numbers equal pytrec_eval's on the same run.</para>
/// <para><b>Relevance</b>: a grade &gt; 0 is relevant. nDCG uses the grade itself as gain (trec_eval's
/// <c>ndcg_cut</c>, not 2^grade - 1) with the discount 1/log2(rank + 1); the ideal DCG takes the judged grades in
/// descending order. Recall@k = relevant in the top k / all relevant. MRR@k = 1/rank of the first relevant
/// document in the top k, else 0.</para>
/// <para><b>Queries without a relevant document</b> have no defined nDCG or recall; they are left out of every
/// mean and counted in <see cref="RetrievalReport.QueriesWithoutRelevant"/> (as BEIR, whose queries all have
/// one). A query with relevant documents but no results scores 0 in every metric. With
/// <c>ignoreIdenticalIds</c> (BEIR's default) a document whose id equals the query id is dropped from its results.</para>
/// </remarks>
public static class RetrievalMetrics
{
    /// <summary>Document ids by score, highest first, ties by document id descending (trec_eval).</summary>
    public static IReadOnlyList<string> Rank(IReadOnlyDictionary<string, double> scores) =>
        scores.OrderByDescending(kv => kv.Value).ThenByDescending(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key).ToArray();

    public static double NdcgAt(IReadOnlyList<string> ranking, IReadOnlyDictionary<string, int> judgments, int k)
    {
        double ideal = judgments.Values.Where(g => g > 0).OrderByDescending(g => g).Take(k).Select((g, i) => g / Math.Log2(i + 2)).Sum();
        if (ideal == 0) return 0;
        double dcg = ranking.Take(k).Select((doc, i) => Math.Max(0, judgments.GetValueOrDefault(doc)) / Math.Log2(i + 2)).Sum();
        return dcg / ideal;
    }

    public static double RecallAt(IReadOnlyList<string> ranking, IReadOnlyDictionary<string, int> judgments, int k)
    {
        int relevant = judgments.Values.Count(g => g > 0);
        return relevant == 0 ? 0 : (double)ranking.Take(k).Count(doc => judgments.GetValueOrDefault(doc) > 0) / relevant;
    }

    public static double MrrAt(IReadOnlyList<string> ranking, IReadOnlyDictionary<string, int> judgments, int k)
    {
        int rank = 0;
        foreach (string doc in ranking.Take(k))
        {
            rank++;
            if (judgments.GetValueOrDefault(doc) > 0) return 1.0 / rank;
        }
        return 0;
    }

    /// <summary>Means of nDCG@10, Recall@100 and MRR@10 over the qrels' queries that have a relevant document.</summary>
    /// <param name="run">query id → (document id → score), as pytrec_eval takes it.</param>
    public static RetrievalReport Evaluate(IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> run, Qrels qrels,
        bool ignoreIdenticalIds = true)
    {
        double ndcg = 0, recall = 0, mrr = 0;
        int evaluated = 0, withoutRelevant = 0, withoutResults = 0;
        foreach (var (queryId, judgments) in qrels.Judgments)
        {
            if (!judgments.Values.Any(g => g > 0))
            {
                withoutRelevant++;
                continue;
            }
            evaluated++;
            if (!run.TryGetValue(queryId, out var scores) || scores.Count == 0)
            {
                withoutResults++;
                continue;
            }
            var ranking = Rank(scores);
            if (ignoreIdenticalIds) ranking = ranking.Where(doc => doc != queryId).ToArray();
            ndcg += NdcgAt(ranking, judgments, 10);
            recall += RecallAt(ranking, judgments, 100);
            mrr += MrrAt(ranking, judgments, 10);
        }
        return evaluated == 0
            ? new RetrievalReport(0, 0, 0, 0, withoutRelevant, 0)
            : new RetrievalReport(ndcg / evaluated, recall / evaluated, mrr / evaluated, evaluated, withoutRelevant, withoutResults);
    }
}
