using M3Train.DataParallel;
using M3Train.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

public class LossScalerTests
{
    [Fact]
    public void AnOverflowHalvesTheScaleAndAWindowOfGoodStepsDoublesIt()
    {
        var scaler = new LossScaler(65536, window: 3);
        Assert.True(scaler.Backoff());
        Assert.Equal((32768.0, 1L), (scaler.Scale, scaler.OverflowSteps));
        Assert.False(scaler.Grew());
        Assert.False(scaler.Grew());
        Assert.True(scaler.Grew());
        Assert.Equal(65536, scaler.Scale);
        Assert.False(scaler.Grew());            // the count starts again after growing
        Assert.True(scaler.Backoff());          // and after an overflow
        Assert.False(scaler.Grew());
        Assert.False(scaler.Grew());
        Assert.Equal(new LossScalerState(32768, 2, 2), scaler.State);
    }

    [Fact]
    public void AtTheMinimumAnOverflowIsNotAbsorbed()
    {
        var scaler = new LossScaler(2, window: 100);
        Assert.True(scaler.Backoff());
        Assert.Equal(LossScaler.MinScale, scaler.Scale);
        Assert.False(scaler.Backoff());
        Assert.Equal(1, scaler.OverflowSteps);
    }

    [Fact]
    public void AResumedScalerContinuesFromItsState()
    {
        var scaler = new LossScaler(65536, window: 3, new LossScalerState(1024, 2, 7));
        Assert.True(scaler.Grew());
        Assert.Equal(new LossScalerState(2048, 0, 7), scaler.State);
    }

    /// <summary>A linear layer whose gradients are those of <c>scale · sum(x Wᵀ)</c>, and the update step of the trainer.</summary>
    sealed class OneLayer : IDisposable
    {
        public Linear Layer { get; }
        readonly ReplicaSet<nn.Module> _group;
        readonly AdamW _optimizer;

        public OneLayer()
        {
            manual_seed(5);
            Layer = nn.Linear(4, 3);
            _group = new ReplicaSet<nn.Module>([Layer], [CPU]);
            _optimizer = (AdamW)optim.AdamW(Layer.parameters(), lr: 0.1);
        }

        public StepUpdateResult Step(double scale, LossScaler? scaler, bool injectOverflow = false)
        {
            var x = arange(8, dtype: ScalarType.Float32).reshape(2, 4) / 8;
            var loss = nn.functional.linear(x, Layer.weight!, Layer.bias).sum();
            (loss * scale).backward();
            if (injectOverflow) Layer.weight!.grad![0, 0] = float.PositiveInfinity;
            return StepUpdate.Apply([_group], _optimizer, [.. Layer.parameters()], maxGradNorm: 0, loss.detach(), scaler);
        }

        public void Dispose() => _optimizer.Dispose();
    }

    [Fact]
    public void TheUpdateUnscalesGradientsBeforeClippingAndStepsAsAnUnscaledStepWould()
    {
        using var plain = new OneLayer();
        using var scaled = new OneLayer();
        var scaler = new LossScaler(1024, window: 1000);
        var a = plain.Step(1.0, null);
        var b = scaled.Step(scaler.Scale, scaler);
        Assert.True(a.Applied && b.Applied && !b.Overflow);
        Assert.Equal(a.GradNorm, b.GradNorm, 4);
        Assert.True(plain.Layer.weight!.allclose(scaled.Layer.weight!, rtol: 1e-5, atol: 1e-6));
        Assert.Equal(1024, scaler.Scale);
    }

    [Fact]
    public void AnInjectedOverflowSkipsTheStepLeavesTheWeightsAndHalvesTheScale()
    {
        using var layer = new OneLayer();
        var before = layer.Layer.weight!.detach().clone();
        var scaler = new LossScaler(1024, window: 1000);
        var result = layer.Step(scaler.Scale, scaler, injectOverflow: true);
        Assert.False(result.Applied);
        Assert.True(result.Overflow);
        Assert.True(float.IsFinite(result.Loss));
        Assert.Equal((512.0, 1L), (scaler.Scale, scaler.OverflowSteps));
        Assert.True(before.allclose(layer.Layer.weight!, rtol: 0, atol: 0));
        Assert.True(layer.Layer.weight!.grad is not { } g || g.abs().sum().item<float>() == 0, "the overflowed gradients are cleared");

        // At the minimum scale an overflow is a non-finite step like any other, for the trainer's bad-step count.
        var floor = new LossScaler(LossScaler.MinScale, window: 1000);
        var bad = layer.Step(1.0, floor, injectOverflow: true);
        Assert.False(bad.Applied || bad.Overflow);
    }
}
