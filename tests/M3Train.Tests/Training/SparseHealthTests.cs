using M3Train.Model;
using M3Train.Training;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

public class SparseHealthTests
{
    // Three texts of 6 positions (ids 0 <s>, 1 <pad>, 2 </s>; the head gives specials weight 0):
    //   text 0: <s> 5 6 5 </s> <pad>   weights 0 .5 .2 .7 0 .9   → active ids {5: .7, 6: .2}; the pad's .9 is masked out
    //   text 1: <s> 7 </s> <pad> x3    weights all 0             → all zero
    //   text 2: <s> 8 8 9 10 </s>      weights 0 .1 .3 0 .4 0    → active ids {8: .3, 10: .4}; 9 has weight 0
    static readonly long[,] Ids = { { 0, 5, 6, 5, 2, 1 }, { 0, 7, 2, 1, 1, 1 }, { 0, 8, 8, 9, 10, 2 } };
    static readonly float[,] Weights = { { 0, .5f, .2f, .7f, 0, .9f }, { 0, 0, 0, 0, 0, 0 }, { 0, .1f, .3f, 0, .4f, 0 } };
    static readonly long[,] Mask = { { 1, 1, 1, 1, 1, 0 }, { 1, 1, 1, 0, 0, 0 }, { 1, 1, 1, 1, 1, 1 } };

    [Fact]
    public void LexicalFiguresEqualHandCountedValues()
    {
        var figures = SparseHealth.Sparse(tensor(Ids), tensor(Weights), tensor(Mask));

        Assert.Equal(3, figures.Texts);
        Assert.Equal(5 + 3 + 6, figures.Tokens);
        Assert.Equal(4, figures.ActiveTokens);                 // 2 + 0 + 2
        Assert.Equal(1, figures.AllZeroTexts);
        Assert.Equal(4.0 / 3, figures.MeanActiveTokens, 12);
        Assert.Equal(1.0 / 3, figures.AllZeroShare, 12);
        Assert.Equal((.7 + .2 + .3 + .4) / 4, figures.MeanActiveWeight, 6);
        Assert.Equal(14.0 / 3, figures.MeanTokens, 12);
        Assert.True(double.IsNaN(figures.ColbertSelfSimilarity));
    }

    [Fact]
    public void ColbertSelfSimilarityIsTheMeanPairwiseCosine()
    {
        // Text 0: two identical unit vectors (collapsed) → 1. Text 1: orthogonal e0, e1 and a padding row → ‖(e0+e1)/2‖² = 0.5.
        // Text 2: e0 and -e0 → 0. Mean over the three texts: 0.5.
        float[] vectors =
        [
            1, 0, 0, /**/ 1, 0, 0,
            1, 0, 0, /**/ 0, 1, 0,
            1, 0, 0, /**/ -1, 0, 0,
        ];
        var colbert = tensor(vectors, [3, 2, 3]);
        var mask = tensor(new long[,] { { 1, 1 }, { 1, 1 }, { 1, 1 } });
        var (texts, sum) = SparseHealth.Colbert(colbert, mask);
        Assert.Equal(3, texts);
        Assert.Equal(1.5, sum, 6);

        // A padding row (mask 0) is left out of its text's mean even if it is not zero.
        var padded = tensor(new float[] { 1, 0, 0, 0, 1, 0 }, [1, 2, 3]);
        var (one, similarity) = SparseHealth.Colbert(padded, tensor(new long[,] { { 1, 0 } }));
        Assert.Equal(1, one);
        Assert.Equal(1.0, similarity, 6);
    }

    [Fact]
    public void MeasureCombinesBothHeadsAndFiguresAddUp()
    {
        // The representations' mask is <s> followed by ColbertMask, so Measure sees the same mask as above.
        var mask = tensor(Mask);
        var colbertMask = mask[.., 1..];
        var vectors = zeros(3, 5, 3);
        vectors[.., .., 0] = colbertMask.to_type(ScalarType.Float32); // every real token e0: collapsed → 1 per text
        using var reps = new M3Representations(zeros(3, 4), tensor(Weights), tensor(Ids), vectors, colbertMask);

        var figures = SparseHealth.Measure(reps);
        Assert.Equal(SparseHealth.Sparse(tensor(Ids), tensor(Weights), mask) with { ColbertTexts = 3, ColbertSelfSimilaritySum = figures.ColbertSelfSimilaritySum }, figures);
        Assert.Equal(1.0, figures.ColbertSelfSimilarity, 6);

        var twice = figures + figures;
        Assert.Equal(6, twice.Texts);
        Assert.Equal(figures.AllZeroShare, twice.AllZeroShare, 12);
        Assert.Equal(figures.MeanActiveWeight, twice.MeanActiveWeight, 12);
        Assert.Equal(SparseHealthFigures.Empty + figures, figures);
    }
}
