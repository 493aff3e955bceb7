using M3Train.Training.Losses;
using TorchSharp;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;

namespace M3Train.Tests.Training.Losses;

public class M3KdLossTests
{
    [Fact]
    public void TeacherTargetsAreTheSoftmaxOfEachGroupsScores()
    {
        double[] scores = [3.0, 1.0, 0.5, 2.0, 2.0, 4.0];
        var t = M3Train.Training.Losses.TeacherTargets.FromScores(torch.tensor(scores, torch.ScalarType.Float64), 3);
        var expected = ReferenceLosses.TeacherTargets(scores, 3);
        Assert.Equal(expected.Cast<double>().ToArray(), t.data<double>().ToArray(), (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void MaskAccumulatesOverTheGroupsColumns()
    {
        // B = 2, G = 3, in-batch [2, 6]; step i masks columns b·G .. b·G+i-1 for row b.
        var s = Random(new Random(5), 2, 6, 3.0);
        var t = ReferenceLosses.TeacherTargets([2.0, 1.5, 0.1, 0.3, 1.0, 0.9], 3);
        double expected = M3Kd(s, t, 3);

        // The same by hand for one term, so the reference loop is itself pinned: row 1, step 2
        // targets column 5 with columns 3 and 4 masked.
        double row1Step2 = Math.Log(Math.Exp(s[1, 0]) + Math.Exp(s[1, 1]) + Math.Exp(s[1, 2]) + Math.Exp(s[1, 5])) - s[1, 5];
        var withoutRow1Step2 = M3Kd(s, Zeroed(t, 1, 2), 3);
        Assert.Equal(expected, withoutRow1Step2 + t[1, 2] * row1Step2 / 2, 12);

        var loss = M3KdLoss.Compute(ToTensor(s), ToTensor(t), 3);
        Assert.Equal(expected, Value(loss), 12);
        Assert.NotEqual(KlDiv(s, t, 3), expected, 3);
    }

    [Fact]
    public void UsesTheDtypeMinimumSoMaskedColumnsHaveNoGradient()
    {
        var s = ToTensor(Random(new Random(6), 2, 4, 2.0)).requires_grad_();
        var t = ToTensor(ReferenceLosses.TeacherTargets([1.0, 0.0, 0.0, 1.0], 2));
        M3KdLoss.Compute(s, t, 2).backward();
        var grad = s.grad!;
        Assert.False(grad.isnan().any().item<bool>());
        Assert.Equal(0.0, grad.sum().item<double>(), 12); // each cross-entropy's gradient sums to zero per row
    }

    [Fact]
    public void AnExcludedTargetContributesNothing()
    {
        var s = Random(new Random(7), 2, 6, 2.0);
        var t = ReferenceLosses.TeacherTargets([1.0, 0.7, 0.2, 0.1, 0.5, 0.4], 3);
        var exclude = new bool[2, 6];
        exclude[0, 2] = true; // row 0's second negative duplicates its positive
        exclude[1, 0] = true; // row 0's positive also equals row 1's positive
        var loss = M3KdLoss.Compute(ToTensor(s), ToTensor(t), 3, ToTensor(exclude));
        Assert.Equal(M3Kd(s, t, 3, exclude), Value(loss), 12);
        Assert.True(double.IsFinite(Value(loss)));
    }

    static double[,] Zeroed(double[,] t, int r, int i)
    {
        var copy = (double[,])t.Clone();
        copy[r, i] = 0;
        return copy;
    }
}
