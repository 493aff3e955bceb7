namespace M3Train.Eval;

/// <summary>
/// Relevance judgments: query id → (document id → graded relevance). A document is relevant when its grade is
/// greater than 0 (trec_eval's default relevance level 1); unjudged documents count as grade 0.
/// </summary>
public sealed class Qrels
{
    public Qrels(IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> judgments) => Judgments = judgments;

    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>> Judgments { get; }

    private static readonly IReadOnlyDictionary<string, int> None = new Dictionary<string, int>();

    /// <summary>The judgments of one query (empty when it has none).</summary>
    public IReadOnlyDictionary<string, int> For(string queryId) => Judgments.GetValueOrDefault(queryId) ?? None;

    /// <summary>Number of documents judged relevant (grade &gt; 0) for the query.</summary>
    public int RelevantCount(string queryId) => For(queryId).Values.Count(grade => grade > 0);
}
