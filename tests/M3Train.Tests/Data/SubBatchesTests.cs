using M3Train.Data;
using Xunit;

namespace M3Train.Tests.Data;

public class SubBatchesTests
{
    [Fact]
    public void ByLengthCutsTheTextsSortedByLengthEqualLengthsInBatchOrderEachPiecePaddedToItsOwnLongest()
    {
        int[][] ids = [[0, 7, 2], [0, 7, 7, 7, 7, 2], [0, 8, 2], [0, 8, 8, 8, 8, 2], [0, 9, 9, 2]];
        var sub = SubBatches.ByLength(ids, size: 2, padToMultipleOf: 1);

        Assert.Equal([0, 2, 4, 1, 3], sub.Order!);
        Assert.Equal([2, 2, 1], sub.Pieces.Select(p => p.BatchSize));
        Assert.Equal([3, 6, 6], sub.Pieces.Select(p => p.SequenceLength));
        Assert.Equal([0L, 8, 2], sub.Pieces[0].InputIds[3..6]);
        // The two shortest texts and the two longest need no mask; only the middle piece mixes lengths.
        Assert.Equal(1 / 3.0, sub.MaskedShare, 12);
    }

    [Fact]
    public void ByLengthRoundsEachPieceUpToTheMultiple()
    {
        var sub = SubBatches.ByLength([[0, 7, 7, 7, 7, 2], [0, 7, 2]], size: 1, padToMultipleOf: 4);
        Assert.Equal([4, 8], sub.Pieces.Select(p => p.SequenceLength));
        Assert.Equal(1.0, sub.MaskedShare);
    }
}
