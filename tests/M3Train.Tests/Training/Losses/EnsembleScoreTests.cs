using M3Train.Training.Losses;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;

namespace M3Train.Tests.Training.Losses;

public class EnsembleScoreTests
{
    [Fact]
    public void DefaultWeightsAreOneThreeTenthsOne()
    {
        var d = Random(new Random(31), 2, 4, 1.0);
        var s = Random(new Random(32), 2, 4, 1.0);
        var c = Random(new Random(33), 2, 4, 1.0);
        var expected = Combine((1.0, d), (0.3, s), (1.0, c)).Cast<double>().ToArray();
        var actual = EnsembleScore.Compute(ToTensor(d), ToTensor(s), ToTensor(c)).data<double>().ToArray();
        Assert.Equal(expected, actual, (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void DisabledHeadsAreLeftOut()
    {
        var d = Random(new Random(34), 2, 4, 1.0);
        var c = Random(new Random(35), 2, 4, 1.0);
        var config = new LossConfig { EnsembleColbertWeight = 0.5 };
        var expected = Combine((1.0, d), (0.5, c)).Cast<double>().ToArray();
        var actual = EnsembleScore.Compute(ToTensor(d), null, ToTensor(c), config).data<double>().ToArray();
        Assert.Equal(expected, actual, (a, b) => Math.Abs(a - b) < 1e-12);
        Assert.Throws<ArgumentException>(() => EnsembleScore.Compute(null, null, null));
    }
}
