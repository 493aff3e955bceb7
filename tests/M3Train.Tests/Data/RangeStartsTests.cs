using M3Train.Data;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>Finding the range that holds an index among ranges laid end to end, empty ones included.</summary>
public class RangeStartsTests
{
    // Ranges [0, 3), [3, 3) (empty), [3, 7), [7, 7) (empty, last): starts and then the end.
    static readonly long[] Starts = [0, 3, 3, 7, 7];

    [Theory]
    [InlineData(0, 0)]
    [InlineData(2, 0)]
    [InlineData(3, 2)]   // the empty range starting at 3 is passed over
    [InlineData(6, 2)]
    [InlineData(5, 2)]
    public void AnIndexFallsInTheLastRangeStartingAtOrBeforeIt(long x, int range) =>
        Assert.Equal(range, RangeStarts.Find<long>(Starts, x));

    [Fact]
    public void BeforeTheFirstRangeIsMinusOne() => Assert.Equal(-1, RangeStarts.Find<int>([2, 5], 1));
}
