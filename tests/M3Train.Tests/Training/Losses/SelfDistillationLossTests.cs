using M3Train.Training.Losses;
using TorchSharp;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;

namespace M3Train.Tests.Training.Losses;

public class SelfDistillationLossTests
{
    [Fact]
    public void CrossEntropyToTheEnsembleSoftmax()
    {
        var student = Random(new Random(21), 2, 6, 3.0);
        var ensemble = Random(new Random(22), 2, 6, 5.0);
        Assert.Equal(SelfDistill(student, ensemble), Value(SelfDistillationLoss.Compute(ToTensor(student), ToTensor(ensemble))), 12);
    }

    [Fact]
    public void NoGradientReachesTheTeacher()
    {
        var student = ToTensor(Random(new Random(23), 2, 4, 1.0)).requires_grad_();
        var ensemble = ToTensor(Random(new Random(24), 2, 4, 1.0)).requires_grad_();
        SelfDistillationLoss.Compute(student, ensemble).backward();
        Assert.NotNull(student.grad);
        Assert.Null(ensemble.grad);
    }

    [Fact]
    public void MaskedColumnsGiveNoNaN()
    {
        var student = Random(new Random(25), 2, 4, 1.0);
        var ensemble = Random(new Random(26), 2, 4, 1.0);
        var exclude = new bool[2, 4];
        exclude[0, 3] = true;
        var s = ToTensor(student).requires_grad_();
        var loss = SelfDistillationLoss.Compute(s, ToTensor(ensemble), ToTensor(exclude));
        loss.backward();
        Assert.Equal(SelfDistill(student, ensemble, exclude), Value(loss), 12);
        Assert.False(s.grad!.isnan().any().item<bool>());
        Assert.Equal(0.0, s.grad![0, 3].item<double>());
    }

    [Theory]
    [InlineData(0, 0, false)]
    [InlineData(1, 0, true)]
    [InlineData(0, -1, true)]
    [InlineData(5, 5, false)]
    public void StartsAfterTheStartStep(long microStep, int startStep, bool active) =>
        Assert.Equal(active, SelfDistillationLoss.IsActive(microStep, startStep));
}
