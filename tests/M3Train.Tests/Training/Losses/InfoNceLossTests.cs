using M3Train.Training.Losses;
using TorchSharp;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;

namespace M3Train.Tests.Training.Losses;

public class InfoNceLossTests
{
    [Fact]
    public void InBatchTargetsAreRowTimesGroupSize()
    {
        var s = Random(new Random(1), 3, 12, 4.0);
        double expected = CrossEntropy(s, [0, 4, 8]);
        Assert.Equal(expected, Value(InfoNceLoss.Compute(ToTensor(s), groupSize: 4)), 12);
    }

    [Fact]
    public void ExplicitTargetsAndExcludedColumns()
    {
        var s = Random(new Random(2), 2, 5, 3.0);
        var exclude = new bool[2, 5];
        exclude[0, 4] = true;
        exclude[1, 0] = true;
        double expected = CrossEntropy(s, [1, 3], exclude);
        var loss = InfoNceLoss.Compute(ToTensor(s), torch.tensor(new long[] { 1, 3 }), ToTensor(exclude));
        Assert.Equal(expected, Value(loss), 12);
        Assert.NotEqual(CrossEntropy(s, [1, 3]), expected, 6);
    }

    [Fact]
    public void HalfPrecisionScoresAreComputedInFloat32()
    {
        var s = Random(new Random(3), 2, 4, 2.0);
        var loss = InfoNceLoss.Compute(ToTensor(s).to_type(torch.ScalarType.BFloat16), groupSize: 2);
        Assert.Equal(torch.ScalarType.Float32, loss.dtype);
        Assert.Equal(InfoNce(s, 2), Value(loss), 1);
    }

    [Fact]
    public void RejectsAScoreMatrixThatFitsNoLayout() =>
        Assert.Throws<ArgumentException>(() => InfoNceLoss.Compute(torch.zeros(2, 5), groupSize: 2));
}
