using M3Train.Training;
using M3Train.Training.Pretraining;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Pretraining;

public sealed class EnhancedDecodingMaskTests
{
    static readonly int[] Lengths = [40, 2, 17, 33, 3, 1, 26, 40];
    const int L = 40;

    static Tensor AttentionMask()
    {
        var mask = new long[Lengths.Length * L];
        for (int b = 0; b < Lengths.Length; b++)
            for (int t = 0; t < Lengths[b]; t++) mask[b * L + t] = 1;
        return tensor(mask, [Lengths.Length, L]);
    }

    static bool[,,] Build(double ratio, MaskSampling sampling, long seed)
    {
        using var mask = AttentionMask();
        using var generator = new Generator((ulong)seed, CPU);
        using var visible = EnhancedDecodingMask.Build(mask, ratio, sampling, generator);
        Assert.Equal([Lengths.Length, 1, L, L], visible.shape);
        var flat = visible.contiguous().data<bool>().ToArray();
        var result = new bool[Lengths.Length, L, L];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length);
        return result;
    }

    /// <summary>Rows that are predicted or at least real tokens after the CLS: 1 ≤ i &lt; length.</summary>
    static IEnumerable<(int B, int I)> TokenRows() =>
        Lengths.SelectMany((len, b) => Enumerable.Range(1, Math.Max(0, len - 1)).Select(i => (b, i)));

    [Theory]
    [InlineData(0.5, MaskSampling.Exact, 1L)]
    [InlineData(0.5, MaskSampling.Exact, 2L)]
    [InlineData(0.15, MaskSampling.Exact, 3L)]
    [InlineData(0.9, MaskSampling.Exact, 4L)]
    [InlineData(0.5, MaskSampling.Bernoulli, 5L)]
    [InlineData(0.0, MaskSampling.Exact, 6L)]
    public void NoRowSeesItselfEveryRowSeesTheClsAndNoRowSeesPadding(double ratio, MaskSampling sampling, long seed)
    {
        var v = Build(ratio, sampling, seed);
        for (int b = 0; b < Lengths.Length; b++)
            for (int i = 0; i < L; i++)
            {
                Assert.True(v[b, i, 0], $"text {b} row {i} does not see position 0");
                for (int j = Lengths[b]; j < L; j++) Assert.False(v[b, i, j], $"text {b} row {i} sees padding key {j}");
                if (i >= Lengths[b])
                    Assert.Equal(1, Enumerable.Range(0, L).Count(j => v[b, i, j]));   // padding rows: the CLS only
            }
        foreach (var (b, i) in TokenRows())
            Assert.False(v[b, i, i], $"text {b} row {i} sees itself");
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.15)]
    [InlineData(0.9)]
    public void ExactSamplingHidesRoundedRatioOfTheOtherTokensInEveryRow(double ratio)
    {
        var v = Build(ratio, MaskSampling.Exact, 11);
        foreach (var (b, i) in TokenRows())
        {
            int others = Lengths[b] - 2;   // tokens 1..len-1 except the row itself
            int hidden = others == 0 ? 0 : Math.Max(1, (int)Math.Round(ratio * others, MidpointRounding.ToEven));
            int visible = Enumerable.Range(0, L).Count(j => v[b, i, j]);
            Assert.Equal(1 + others - hidden, visible);
        }
    }

    [Fact]
    public void BernoulliSamplingHidesTheRatioOnAverage()
    {
        long hidden = 0, others = 0;
        for (long seed = 0; seed < 8; seed++)
        {
            var v = Build(0.5, MaskSampling.Bernoulli, 100 + seed);
            foreach (var (b, i) in TokenRows())
            {
                others += Lengths[b] - 2;
                hidden += Lengths[b] - 2 - (Enumerable.Range(0, L).Count(j => v[b, i, j]) - 1);
            }
        }
        Assert.InRange((double)hidden / others, 0.47, 0.53);
    }

    [Fact]
    public void RowsDrawTheirOwnSetsAndTheSeedFixesThem()
    {
        var a = Build(0.5, MaskSampling.Exact, 21);
        var b = Build(0.5, MaskSampling.Exact, 21);
        var c = Build(0.5, MaskSampling.Exact, 22);
        Assert.Equal(a.Cast<bool>(), b.Cast<bool>());
        Assert.NotEqual(a.Cast<bool>(), c.Cast<bool>());
        var rowSets = Enumerable.Range(1, 38).Select(i => string.Concat(Enumerable.Range(0, L).Select(j => i == j ? '-' : a[0, i, j] ? '1' : '0'))).ToList();
        Assert.True(rowSets.Distinct().Count() > 30, "rows of one text share their attention sets");
    }
}
