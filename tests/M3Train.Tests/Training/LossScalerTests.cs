using M3Train.DataParallel;
using M3Train.Tests.Distributed;
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

    /// <summary>A linear layer whose gradients are those of <c>scale · sum(x Wᵀ)</c> (x shifted by the rank), and the update step of the trainer.</summary>
    sealed class OneLayer : IDisposable
    {
        public Linear Layer { get; }
        readonly DataParallelGroup _group;
        readonly GradientBuckets _gradients;
        readonly AdamW _optimizer;

        public OneLayer(DataParallelGroup? group = null)
        {
            Layer = nn.Linear(4, 3);
            // Fixed weights rather than seeded ones: ranks on threads of one process share its random generator.
            using (no_grad())
            {
                Layer.weight!.copy_((arange(12, dtype: ScalarType.Float32).reshape(3, 4) - 6) / 10);
                Layer.bias!.copy_(tensor(new[] { 0.1f, -0.2f, 0.3f }));
            }
            _group = group ?? DataParallelGroup.Alone(CPU);
            _gradients = new GradientBuckets(_group, [.. Layer.parameters()], []);
            _optimizer = (AdamW)optim.AdamW(Layer.parameters(), lr: 0.1);
        }

        public StepUpdateResult Step(double scale, LossScaler? scaler, bool injectOverflow = false)
        {
            var x = (arange(8, dtype: ScalarType.Float32).reshape(2, 4) + _group.Rank) / 8;
            var loss = nn.functional.linear(x, Layer.weight!, Layer.bias).sum();
            (loss * scale).backward();
            if (injectOverflow) Layer.weight!.grad![0, 0] = float.PositiveInfinity;
            return StepUpdate.Apply(_gradients, _optimizer, [.. Layer.parameters()], maxGradNorm: 0, _group.Mean(loss.detach()), scaler);
        }

        public void Dispose()
        {
            _gradients.Dispose();
            _optimizer.Dispose();
        }
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

    [Fact]
    public void AnOverflowOnOneRankSkipsTheStepOnEveryRankAndTheScalesAndWeightsStayTheSame()
    {
        var ranks = LocalJob.Results(2, context =>
        {
            using var layer = new OneLayer(new DataParallelGroup(context.Collectives, CPU));
            var scaler = new LossScaler(1024, window: 1000);
            var overflowed = layer.Step(scaler.Scale, scaler, injectOverflow: context.Rank == 1);
            var afterOverflow = layer.Layer.weight!.detach().clone();
            var good = layer.Step(scaler.Scale, scaler);
            return (Overflowed: overflowed, AfterOverflow: afterOverflow, Good: good, scaler.State, Weight: layer.Layer.weight!.detach().clone());
        });
        using var start = new OneLayer();
        foreach (var rank in ranks)
        {
            // Rank 0's own gradients were finite: it skips because the average it shares with rank 1 is not.
            Assert.True(rank.Overflowed.Overflow && !rank.Overflowed.Applied);
            Assert.True(rank.AfterOverflow.equal(start.Layer.weight!).all().item<bool>(), "the overflowed step changed no weight");
            Assert.True(rank.Good.Applied);
            Assert.Equal(new LossScalerState(512, 1, 1), rank.State);
        }
        Assert.True(ranks[0].Weight.equal(ranks[1].Weight).all().item<bool>(), "the ranks' weights parted after the overflow");
        Assert.False(ranks[0].Weight.equal(start.Layer.weight!).all().item<bool>());
    }
}
