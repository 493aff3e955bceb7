using Serilog;

namespace M3Train.Eval;

/// <summary>
/// A BEIR test set read and cross-checked: every query the qrels judge must have a text (an error names the qrels
/// file and the ids), judged documents missing from the corpus are counted and logged (they cannot be retrieved,
/// so they lower recall, as in BEIR).
/// </summary>
public sealed record BeirDataset(
    IReadOnlyList<BeirDocument> Corpus,
    IReadOnlyList<BeirQuery> Queries,
    Qrels Qrels,
    string CorpusPath,
    string CorpusHash)
{
    /// <summary>The queries that have a relevant document: the ones evaluated, in queries-file order.</summary>
    public IReadOnlyList<BeirQuery> EvaluatedQueries =>
        Queries.Where(q => Qrels.RelevantCount(q.Id) > 0).ToArray();

    public static BeirDataset Load(string corpusPath, string queriesPath, string qrelsPath)
    {
        var corpus = BeirReader.ReadCorpus(corpusPath);
        var queries = BeirReader.ReadQueries(queriesPath);
        var qrels = BeirReader.ReadQrels(qrelsPath);
        if (corpus.Count == 0) throw new M3TrainException($"{corpusPath}: the corpus is empty");

        var queryIds = queries.Select(q => q.Id).ToHashSet(StringComparer.Ordinal);
        var unknown = qrels.Judgments.Keys.Where(id => !queryIds.Contains(id)).ToList();
        if (unknown.Count > 0)
            throw new M3TrainException(
                $"{qrelsPath}: {unknown.Count} query id(s) not in {queriesPath}: {string.Join(", ", unknown.Take(5).Select(id => $"'{id}'"))}{(unknown.Count > 5 ? ", ..." : "")}");
        if (!qrels.Judgments.Values.Any(j => j.Values.Any(g => g > 0)))
            throw new M3TrainException($"{qrelsPath}: no query has a relevant document (score > 0); there is nothing to evaluate");

        var docIds = corpus.Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
        int missingDocs = qrels.Judgments.Values.SelectMany(j => j.Where(kv => kv.Value > 0).Select(kv => kv.Key))
            .Distinct(StringComparer.Ordinal).Count(id => !docIds.Contains(id));
        if (missingDocs > 0)
            Log.Warning("{Qrels}: {Count} relevant document id(s) are not in {Corpus}; they cannot be retrieved", qrelsPath, missingDocs, corpusPath);
        return new BeirDataset(corpus, queries, qrels, corpusPath, ContentHash.OfFile(corpusPath));
    }
}
