using M3Train.Training.Losses;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;

namespace M3Train.Tests.Training.Losses;

public class KlDivTeacherLossTests
{
    [Fact]
    public void LocalTeacherCrossEntropyPlusInfoNce()
    {
        var s = Random(new Random(11), 2, 6, 3.0);
        var t = ReferenceLosses.TeacherTargets([0.9, 0.2, 0.4, 1.1, 1.0, -0.5], 3);
        double local = 0;
        for (int r = 0; r < 2; r++)
        {
            double lse = Math.Log(Math.Exp(s[r, 3 * r]) + Math.Exp(s[r, 3 * r + 1]) + Math.Exp(s[r, 3 * r + 2]));
            for (int i = 0; i < 3; i++) local -= t[r, i] * (s[r, 3 * r + i] - lse);
        }
        double expected = local / 2 + InfoNce(s, 3);
        Assert.Equal(expected, Value(KlDivTeacherLoss.Compute(ToTensor(s), ToTensor(t), 3)), 12);
    }

    [Fact]
    public void ExcludedColumnsLeaveBothTerms()
    {
        var s = Random(new Random(12), 2, 4, 2.0);
        var t = ReferenceLosses.TeacherTargets([0.5, 0.1, 0.2, 0.9], 2);
        var exclude = new bool[2, 4];
        exclude[0, 1] = true;
        exclude[1, 0] = true;
        Assert.Equal(KlDiv(s, t, 2, exclude), Value(KlDivTeacherLoss.Compute(ToTensor(s), ToTensor(t), 2, ToTensor(exclude))), 12);
    }
}
