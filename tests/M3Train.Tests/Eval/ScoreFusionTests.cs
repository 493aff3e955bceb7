using M3Train.Eval;
using Xunit;

namespace M3Train.Tests.Eval;

public class ScoreFusionTests
{
    static readonly SearchHit[] Dense = [new(0, 0.9), new(1, 0.8), new(2, 0.5)];
    static readonly SearchHit[] Sparse = [new(2, 0.4), new(3, 0.3)];

    [Fact]
    public void MissingDocumentsTakeTheListMinimum()
    {
        var fused = ScoreFusion.WeightedSum([(Dense, 1.0), (Sparse, 0.3)], 10);
        // doc 0: 0.9 + 0.3·0.3; doc 1: 0.8 + 0.3·0.3; doc 2: 0.5 + 0.3·0.4; doc 3: 0.5 + 0.3·0.3.
        Assert.Equal([0, 1, 2, 3], fused.Select(h => h.DocIndex));
        Assert.Equal([0.9 + 0.09, 0.8 + 0.09, 0.5 + 0.12, 0.5 + 0.09], fused.Select(h => h.Score), (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void MissingDocumentsAsZeroAndTheCutAtK()
    {
        var fused = ScoreFusion.WeightedSum([(Dense, 1.0), (Sparse, 0.3)], 3, MissingScore.Zero);
        Assert.Equal([0, 1, 2], fused.Select(h => h.DocIndex));
        Assert.Equal([0.9, 0.8, 0.5 + 0.12], fused.Select(h => h.Score), (a, b) => Math.Abs(a - b) < 1e-12);
    }
}
