using M3Train.Eval;
using Xunit;

namespace M3Train.Tests.Eval;

public class RetrievalMetricsTests
{
    static IReadOnlyDictionary<string, double> Scores(params (string Doc, double Score)[] hits) => hits.ToDictionary(h => h.Doc, h => h.Score);

    static Qrels Judgments(params (string Query, string Doc, int Grade)[] rows) => new(rows
        .GroupBy(r => r.Query)
        .ToDictionary(g => g.Key, g => (IReadOnlyDictionary<string, int>)g.ToDictionary(r => r.Doc, r => r.Grade)));

    [Fact]
    public void GradedRelevanceByHand()
    {
        var judgments = new Dictionary<string, int> { ["d1"] = 2, ["d2"] = 1, ["d3"] = 0, ["d4"] = 1 };
        var ranking = RetrievalMetrics.Rank(Scores(("d3", 0.9), ("d1", 0.8), ("d5", 0.7), ("d2", 0.6)));
        Assert.Equal(["d3", "d1", "d5", "d2"], ranking);

        double dcg = 0 / Math.Log2(2) + 2 / Math.Log2(3) + 0 / Math.Log2(4) + 1 / Math.Log2(5);
        double ideal = 2 / Math.Log2(2) + 1 / Math.Log2(3) + 1 / Math.Log2(4);
        Assert.Equal(dcg / ideal, RetrievalMetrics.NdcgAt(ranking, judgments, 10), 12);
        Assert.Equal(2.0 / 3.0, RetrievalMetrics.RecallAt(ranking, judgments, 100), 12);
        Assert.Equal(0.5, RetrievalMetrics.MrrAt(ranking, judgments, 10), 12);
        // Cut-offs: at k = 1 only d3 counts.
        Assert.Equal(0.0, RetrievalMetrics.NdcgAt(ranking, judgments, 1));
        Assert.Equal(0.0, RetrievalMetrics.MrrAt(ranking, judgments, 1));
    }

    [Fact]
    public void TiesAreBrokenByDocumentIdDescendingAsTrecEval()
    {
        var ranking = RetrievalMetrics.Rank(Scores(("dA", 0.5), ("dC", 0.9), ("dB", 0.5), ("dD", 0.5)));
        Assert.Equal(["dC", "dD", "dB", "dA"], ranking);
        var judgments = new Dictionary<string, int> { ["dA"] = 1 };
        Assert.Equal(0.25, RetrievalMetrics.MrrAt(ranking, judgments, 10), 12);
        Assert.Equal(1 / Math.Log2(5), RetrievalMetrics.NdcgAt(ranking, judgments, 10), 12);
    }

    [Fact]
    public void MeansLeaveOutQueriesWithoutRelevantDocuments()
    {
        var qrels = Judgments(
            ("q1", "d1", 2), ("q1", "d2", 1), ("q1", "d3", 0), ("q1", "d4", 1),
            ("q2", "dA", 1),
            ("q3", "d1", 0),             // no relevant document: left out
            ("q4", "d9", 1),             // relevant document but no results: scores 0
            ("q5", "d7", 1));
        var run = new Dictionary<string, IReadOnlyDictionary<string, double>>
        {
            ["q1"] = Scores(("d3", 0.9), ("d1", 0.8), ("d5", 0.7), ("d2", 0.6)),
            ["q2"] = Scores(("dA", 0.5), ("dC", 0.9), ("dB", 0.5)),
            ["q3"] = Scores(("d1", 0.9)),
            ["q5"] = Scores(("q5", 0.99), ("d7", 0.5)), // the query itself is dropped (BEIR's ignore_identical_ids)
        };
        var report = RetrievalMetrics.Evaluate(run, qrels);

        double q1Ndcg = (2 / Math.Log2(3) + 1 / Math.Log2(5)) / (2 + 1 / Math.Log2(3) + 1 / Math.Log2(4));
        double q2Ndcg = 1 / Math.Log2(4); // dC, dB, dA
        Assert.Equal(4, report.QueriesEvaluated);
        Assert.Equal(1, report.QueriesWithoutRelevant);
        Assert.Equal(1, report.QueriesWithoutResults);
        Assert.Equal((q1Ndcg + q2Ndcg + 0 + 1) / 4, report.NdcgAt10, 12);
        Assert.Equal((2.0 / 3 + 1 + 0 + 1) / 4, report.RecallAt100, 12);
        Assert.Equal((0.5 + 1.0 / 3 + 0 + 1) / 4, report.MrrAt10, 12);

        var keepingIdentical = RetrievalMetrics.Evaluate(run, qrels, ignoreIdenticalIds: false);
        Assert.Equal((0.5 + 1.0 / 3 + 0 + 0.5) / 4, keepingIdentical.MrrAt10, 12);
    }

    [Fact]
    public void RecallCountsBeyondTheNdcgCutOff()
    {
        var scores = Enumerable.Range(0, 120).ToDictionary(i => $"d{i:D3}", i => 1.0 - i / 1000.0);
        var ranking = RetrievalMetrics.Rank(scores);
        var judgments = new Dictionary<string, int> { ["d010"] = 1, ["d099"] = 1, ["d110"] = 1 };
        Assert.Equal(0.0, RetrievalMetrics.NdcgAt(ranking, judgments, 10));
        Assert.Equal(0.0, RetrievalMetrics.MrrAt(ranking, judgments, 10));
        Assert.Equal(2.0 / 3, RetrievalMetrics.RecallAt(ranking, judgments, 100), 12);
    }

    [Fact]
    public void RunFromHitsMapsIndicesToIds()
    {
        var run = RetrievalRun.FromHits(["q1"], [[new SearchHit(1, 0.7), new SearchHit(0, 0.2)]], ["a", "b"]);
        Assert.Equal(0.7, run["q1"]["b"]);
        Assert.Equal(0.2, run["q1"]["a"]);
    }
}
