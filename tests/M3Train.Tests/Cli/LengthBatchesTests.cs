using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary>Length-sorted inference batches: longest first, and smaller above 512 tokens so a batch's attention stays that of the default.</summary>
public sealed class LengthBatchesTests
{
    [Theory]
    [InlineData(12, 256, 256)]
    [InlineData(512, 256, 256)]
    [InlineData(1024, 256, 64)]
    [InlineData(8192, 256, 1)]
    [InlineData(8192, 16, 1)]
    [InlineData(600, 3, 2)]
    public void RowsShrinkWithTheSquareOfTheLengthAbove512(int length, int maxRows, int rows) =>
        Assert.Equal(rows, LengthBatches.RowsFor(length, maxRows));

    [Fact]
    public void EveryTextIsInOneBatchLongestFirst()
    {
        int[] lengths = [5, 2048, 40, 700, 2048, 512, 9, 1100];
        var batches = LengthBatches.LongestFirst(lengths, 8).ToList();

        Assert.Equal(Enumerable.Range(0, lengths.Length), batches.SelectMany(b => b).Order());
        var order = batches.SelectMany(b => b).Select(i => lengths[i]).ToList();
        Assert.Equal(order.OrderDescending(), order);
        Assert.Equal([1], batches[0]);
        Assert.Equal([4], batches[1]);
        Assert.All(batches, b => Assert.True(b.Length <= LengthBatches.RowsFor(lengths[b[0]], 8)));
    }
}
