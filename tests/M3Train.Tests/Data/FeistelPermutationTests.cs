using M3Train.Data;
using Xunit;

namespace M3Train.Tests.Data;

public class FeistelPermutationTests
{
    static FeistelPermutation Of(long n, long seed) => new(n, DataRandom.For(seed, DataRandomPurpose.RowOrder, 0));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(17)]
    [InlineData(1000)]
    [InlineData(65_537)]
    public void ItIsABijectionOfZeroToN(int n)
    {
        var p = Of(n, 42);
        var seen = new bool[n];
        for (int i = 0; i < n; i++)
        {
            long j = p[i];
            Assert.InRange(j, 0, n - 1);
            Assert.False(seen[j], $"{j} hit twice");
            seen[j] = true;
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => p[n]);
    }

    [Fact]
    public void ItIsAPureFunctionOfTheSeedAndShufflesWell()
    {
        const int n = 10_000;
        long[] a = [.. Enumerable.Range(0, n).Select(i => Of(n, 7)[i])], again = [.. Enumerable.Range(0, n).Select(i => Of(n, 7)[i])];
        long[] other = [.. Enumerable.Range(0, n).Select(i => Of(n, 8)[i])];
        Assert.Equal(a, again);
        Assert.NotEqual(a, other);
        // Neighbours are scattered: of consecutive inputs, few land within 10 places of each other.
        int close = Enumerable.Range(0, n - 1).Count(i => Math.Abs(a[i + 1] - a[i]) < 10);
        Assert.True(close < n / 100, $"{close} of {n} neighbours stay close");
        // Each input lands in each tenth of the range about equally often over many seeds.
        var tenths = new int[10];
        for (int seed = 0; seed < 2000; seed++) tenths[Of(n, seed)[0] * 10 / n]++;
        Assert.All(tenths, t => Assert.InRange(t, 140, 260));
    }

    [Fact]
    public void AnEmptyRangeHasNoIndex() => Assert.Throws<ArgumentOutOfRangeException>(() => Of(0, 1)[0]);
}
