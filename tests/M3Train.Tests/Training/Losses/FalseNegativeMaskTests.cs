using M3Train.Data;
using M3Train.Training.Losses;
using Xunit;

namespace M3Train.Tests.Training.Losses;

public class FalseNegativeMaskTests
{
    [Fact]
    public void SharedPositivesAndOwnDuplicatesAreExcludedButNotThePositive()
    {
        // q0: pos A, negs B C; q1: pos A (shared), negs D A (own duplicate); q2: pos E, negs B F.
        string[] passages = ["A", "B", "C", "A", "D", "A", "E", "B", "F"];
        var mask = FalseNegativeMask.Build(passages, groupSize: 3);
        var rows = mask.Mask.data<bool>().ToArray();
        int[][] expectedExcluded = [[3, 5], [0, 5], []];
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 9; j++)
                Assert.Equal(expectedExcluded[r].Contains(j), rows[r * 9 + j]);
        Assert.Equal(4, mask.MaskedColumns);
    }

    [Fact]
    public void LocalLayoutAndExtraPositivesOfTheDataRow()
    {
        string[] passages = ["A", "B", "C", "D", "E", "F"];
        ulong[] hashes = passages.Select(TextHash.Of).ToArray();
        // q1's data row has a second positive "F", which was sampled as one of its negatives.
        var extra = new IReadOnlyCollection<ulong>[] { [], [TextHash.Of("F")] };
        var mask = FalseNegativeMask.Build(hashes, groupSize: 3, inBatchNegatives: false, positiveHashes: extra);
        Assert.Equal(new long[] { 2, 3 }, mask.Mask.shape);
        Assert.Equal(new[] { false, false, false, false, false, true }, mask.Mask.data<bool>().ToArray());
        Assert.Equal(1, mask.MaskedColumns);
    }

    [Fact]
    public void EqualTextsHashEqually()
    {
        Assert.Equal(TextHash.Of("Kirkenes"), TextHash.Of(string.Concat("Kirk", "enes")));
        Assert.NotEqual(TextHash.Of("Kirkenes"), TextHash.Of("kirkenes"));
    }
}
