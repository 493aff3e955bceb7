using M3Train.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

public class TrainingPartsTests
{
    [Fact]
    public void LinearScheduleWarmsUpThenDecaysToZero()
    {
        var s = new LrSchedule(1e-3, totalSteps: 100, warmupSteps: 10);
        Assert.Equal(1e-4, s.At(0), 12);
        Assert.Equal(1e-3, s.At(9), 12);
        Assert.Equal(1e-3, s.At(10), 12);
        Assert.Equal(1e-3 * 45 / 90, s.At(55), 12);
        Assert.Equal(1e-3 / 90, s.At(99), 12);
        for (int i = 11; i < 100; i++) Assert.True(s.At(i) < s.At(i - 1));
    }

    [Fact]
    public void LogWarmupReachesThePeakAtTheEndOfWarmup()
    {
        var s = new LrSchedule(2e-5, 100, 10, WarmupShape.Log);
        Assert.Equal(2e-5 * Math.Log(2) / Math.Log(11), s.At(0), 15);
        Assert.Equal(2e-5, s.At(9), 15);
        Assert.True(s.At(1) - s.At(0) > s.At(8) - s.At(7));
    }

    [Fact]
    public void ScheduleFromConfigUsesTheWarmupRatio()
    {
        var s = LrSchedule.FromConfig(new TrainConfig { Lr = 1e-5, WarmupRatio = 0.1 }, 95);
        Assert.Equal(10, s.WarmupSteps);
    }

    [Fact]
    public void BiasesAndLayerNormGetNoWeightDecay()
    {
        Assert.True(OptimizerFactory.NoDecay("encoder.layer.0.attention.self.query.bias"));
        Assert.True(OptimizerFactory.NoDecay("encoder.layer.0.output.LayerNorm.weight"));
        Assert.True(OptimizerFactory.NoDecay("embeddings.LayerNorm.weight"));
        Assert.False(OptimizerFactory.NoDecay("encoder.layer.0.output.dense.weight"));
        Assert.False(OptimizerFactory.NoDecay("colbert_linear.weight"));

        var w = new Parameter(ones(3));
        var b = new Parameter(ones(3));
        var frozen = new Parameter(ones(3), requires_grad: false);
        var opt = OptimizerFactory.Create([("x.weight", w), ("x.bias", b), ("y.weight", frozen)], new TrainConfig { WeightDecay = 0.5, Lr = 0.1 });
        var groups = opt.ParamGroups.Cast<ParamGroup>().ToList();
        Assert.Equal(2, groups.Count);
        Assert.Equal(0.5, ((AdamW.Options)groups[0].Options).weight_decay);
        Assert.Equal(0.0, ((AdamW.Options)groups[1].Options).weight_decay);
        Assert.Equal(2, groups.Sum(g => g.Parameters.Count()));
        Assert.Throws<M3TrainException>(() => OptimizerFactory.Create([("y.weight", frozen)], new TrainConfig()));
    }

    [Fact]
    public void ClippingOnTheDeviceMatchesTorchClipGradNorm()
    {
        torch.manual_seed(1);
        var a = new Parameter(randn(4, 5)); var b = new Parameter(randn(7));
        var c = new Parameter(a.detach().clone()); var d = new Parameter(b.detach().clone());
        a.grad = randn(4, 5) * 3; b.grad = randn(7);
        c.grad = a.grad.clone(); d.grad = b.grad.clone();

        var norm = GradientClipper.ClipByGlobalNorm([a, b], 1.0);
        double expected = torch.nn.utils.clip_grad_norm_([c, d], 1.0);

        Assert.Equal(expected, norm.item<float>(), 4);
        Assert.True(a.grad.allclose(c.grad!, 1e-5, 1e-6));
        Assert.True(b.grad.allclose(d.grad!, 1e-5, 1e-6));
    }

    [Fact]
    public void CheckpointsAreCompleteOrAbsent_AndOnlyTheLastKStay()
    {
        string run = Path.Combine(Path.GetTempPath(), $"m3-ckpt-{Guid.NewGuid():N}");
        try
        {
            var m = new CheckpointManager(run, keepLast: 2);
            foreach (int step in new[] { 10, 20, 30 })
                m.Save(step, dir => File.WriteAllText(Path.Combine(dir, "state.json"), $"{{\"step\":{step}}}"));
            Assert.Equal([20, 30], m.List().Select(c => c.Step));

            // A writer that dies half-way (a full disk) leaves no step folder and no temporary folder behind; latest is still 30.
            var full = Assert.Throws<M3TrainException>(() => m.Save(40, dir => { File.WriteAllText(Path.Combine(dir, "half"), "x"); throw new IOException("No space left on device"); }));
            Assert.Contains("No space left on device", full.Message);
            Assert.Contains($"the previous checkpoint {m.Latest()} is intact", full.Message);
            Assert.Empty(Directory.EnumerateDirectories(m.Root, ".tmp-*"));
            Assert.EndsWith(CheckpointManager.NameOf(30), m.Latest());
            Assert.Equal(m.Latest(), m.ResolveResume("latest"));

            m.Save(50, dir => File.WriteAllText(Path.Combine(dir, "state.json"), "{}"));
            Assert.Empty(Directory.EnumerateDirectories(m.Root, ".tmp-*"));
            Assert.Throws<M3TrainException>(() => new CheckpointManager(run + "-none", 1).ResolveResume("latest"));
        }
        finally { if (Directory.Exists(run)) Directory.Delete(run, true); }
    }

    [Fact]
    public void MetricsLogDropsLinesPastTheResumedStep()
    {
        string run = Path.Combine(Path.GetTempPath(), $"m3-metrics-{Guid.NewGuid():N}");
        try
        {
            using (var log = new MetricsLog(run, tensorboard: false))
                foreach (int s in new[] { 10, 20, 30 }) log.Write(s, new Dictionary<string, double> { ["loss"] = s / 10.0 });
            using (var resumed = new MetricsLog(run, tensorboard: false, resumedFromStep: 20))
                resumed.Write(30, new Dictionary<string, double> { ["loss"] = 2.5 });
            var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl"));
            Assert.Equal(3, lines.Length);
            Assert.Contains("\"loss\":2.5", lines[2]);
        }
        finally { if (Directory.Exists(run)) Directory.Delete(run, true); }
    }
}
