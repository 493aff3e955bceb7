using M3Train.Data;
using Xunit;

namespace M3Train.Tests.Data;

public class PackedRowTests
{
    [Fact]
    public void RowsRoundTripThroughTwelveBytesWithCountsCappedWhereTheCapChangesNothing()
    {
        var random = new Random(3);
        Span<byte> bytes = stackalloc byte[PackedRow.Bytes];
        for (int i = 0; i < 2000; i++)
        {
            var row = RowInfo.Capped(random.NextInt64(PackedRow.MaxKey + 1), random.Next(1 << 22), random.Next(1 << 22), random.Next(3000),
                random.Next(2) == 1, (RowTypeRule)random.Next(4));
            PackedRow.Write(bytes, row);
            Assert.Equal(row, PackedRow.Read(bytes));
            Assert.Equal((row.QueryTokens, row.PassageTokens), PackedRow.ReadTokens(bytes));
        }
        var huge = RowInfo.Capped(PackedRow.MaxKey, 5_000_000, 3_000_000, 5000, true, RowTypeRule.SymmetricClass);
        Assert.Equal((PackedRow.TokenCap, PackedRow.TokenCap, PackedRow.NegativesCap), (huge.QueryTokens, huge.PassageTokens, huge.Negatives));
        // The caps are above every maximum length (2^20) and every group (1024 passages): binning and group sizes are exact.
        Assert.True(PackedRow.TokenCap > 1 << 20);
        Assert.Equal(1024, TrainGroupRules.GroupSize(RowTypeRule.SymmetricClass, huge.Negatives, 1024));
        Assert.Throws<ArgumentOutOfRangeException>(() => PackedRow.Write(new byte[PackedRow.Bytes], huge with { Key = PackedRow.MaxKey + 1 }));
    }

    [Fact]
    public void EveryBitPatternIsARowThatWritesBackTheSame()
    {
        var random = new Random(5);
        var bytes = new byte[PackedRow.Bytes];
        var again = new byte[PackedRow.Bytes];
        for (int i = 0; i < 2000; i++)
        {
            random.NextBytes(bytes);
            bytes[^1] &= 0x7F;   // bit 95 is unused: written 0
            var row = PackedRow.Read(bytes);
            Assert.InRange(row.Key, 0, PackedRow.MaxKey);
            Assert.True(Enum.IsDefined(row.TypeRule));
            PackedRow.Write(again, row);
            Assert.Equal(bytes, again);
        }
    }
}
