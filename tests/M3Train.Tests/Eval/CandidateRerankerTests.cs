using M3Train.Eval;
using Xunit;

namespace M3Train.Tests.Eval;

public class CandidateRerankerTests
{
    static readonly SearchHit[] Candidates = [new(5, 0.9), new(7, 0.8), new(9, 0.7)];
    static readonly Dictionary<int, double> ColbertScores = new() { [5] = 0.1, [7] = 0.6, [9] = 0.3 };
    static readonly Dictionary<int, double> SparseScores = new() { [5] = 0.2, [7] = 0.0, [9] = 1.0 };

    [Fact]
    public void ColbertOrderWithOneCallPerQuery()
    {
        int calls = 0;
        var hits = CandidateReranker.Colbert(Candidates, 2, docs =>
        {
            calls++;
            Assert.Equal([5, 7, 9], docs);
            return docs.Select(d => ColbertScores[d]).ToArray();
        });
        Assert.Equal(1, calls);
        Assert.Equal([new SearchHit(7, 0.6), new SearchHit(9, 0.3)], hits);
    }

    [Fact]
    public void AllModeIsTheWeightedSumWithTheFirstStageScore()
    {
        var hits = CandidateReranker.Rerank(Candidates, 10,
            RerankTerm.FirstStage(1.0),
            RerankTerm.Of(0.3, docs => docs.Select(d => SparseScores[d]).ToArray()),
            RerankTerm.Of(1.0, docs => docs.Select(d => ColbertScores[d]).ToArray()));
        // 5: 0.9 + 0.06 + 0.1 = 1.06; 7: 0.8 + 0 + 0.6 = 1.4; 9: 0.7 + 0.3 + 0.3 = 1.3.
        Assert.Equal([7, 9, 5], hits.Select(h => h.DocIndex));
        Assert.Equal([1.4, 1.3, 1.06], hits.Select(h => h.Score), (a, b) => Math.Abs(a - b) < 1e-12);
    }
}
