using System.Text.Json.Nodes;
using M3Train.Tests.Checkpoints;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Training;

/// <summary>fp16 training on the CPU (libtorch runs fp16 matmuls there), with the loss scaler in the loop. Reads log.jsonl, so it runs alone.</summary>
[Collection(SerilogCaptureCollection.Name)]
public class Fp16TrainingTests
{
    static RunConfig Fp16(TinyRun run, double initialScale, int maxSteps = 6) =>
        run.Config(maxSteps) with
        {
            Model = run.Config().Model with { Path = TinyRun.Repo("data", "models", "tiny-m3-pretrained") },
            Train = run.Config(maxSteps).Train with { Precision = Precision.Fp16, LossScaleInitial = initialScale, SaveEvery = 3 },
        };

    [Fact]
    public void Fp16TrainsLikeFp32AndLogsTheLossScale()
    {
        using var fp32Run = new TinyRun();
        var fp32 = fp32Run.Config(maxSteps: 6) with { Model = fp32Run.Config().Model with { Path = TinyRun.Repo("data", "models", "tiny-m3-pretrained") } };
        UnifiedFinetuneRecipe.Run(fp32);
        using var fp16Run = new TinyRun();
        var result = UnifiedFinetuneRecipe.Run(Fp16(fp16Run, initialScale: 1024));

        Assert.Equal(6, result.Steps);
        var a = FinetuneRecipeTests.Metrics(fp32Run.Output);
        var b = FinetuneRecipeTests.Metrics(fp16Run.Output);
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
            Assert.Equal(a[i]["loss"]!.GetValue<double>(), b[i]["loss"]!.GetValue<double>(), 0.02);
        Assert.Equal(1024, b[^1]["loss_scale"]!.GetValue<double>());
        Assert.Equal(0, b[^1]["fp16_overflow_steps"]!.GetValue<double>());
        Assert.Null(a[^1]["loss_scale"]);
    }

    [Fact]
    public void AScaleTooLargeForFp16OverflowsBacksOffAndTheRunGoesOnAndResumesWithItsScale()
    {
        using var run = new TinyRun();
        // 2^30 times the loss overflows fp16's 65504 in the activations' gradients: the scale halves until it fits.
        var config = Fp16(run, initialScale: 1 << 30);
        var result = UnifiedFinetuneRecipe.Run(config);
        Assert.Equal(6, result.Steps);
        Assert.Equal(0, result.SkippedSteps);
        var last = FinetuneRecipeTests.Metrics(run.Output)[^1];
        double scale = last["loss_scale"]!.GetValue<double>();
        double overflows = last["fp16_overflow_steps"]!.GetValue<double>();
        Assert.True(overflows > 0, "no overflow at 2^30");
        Assert.Equal((double)(1 << 30) / Math.Pow(2, overflows), scale);
        Assert.True(double.IsFinite(result.LastLoss));
        Assert.Contains(File.ReadAllLines(Path.Combine(run.Output, "log.jsonl")), l => l.Contains("fp16 gradients overflowed"));

        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(run.Output, "checkpoints", "step-00000006", TrainerState.FileName)))!;
        Assert.Equal(scale, state["loss_scaler"]!["scale"]!.GetValue<double>());
        var resumed = UnifiedFinetuneRecipe.Run(config with { Train = config.Train with { MaxSteps = 8 } }, new TrainerOptions { Resume = "latest" });
        Assert.Equal(8, resumed.Steps);
        Assert.Equal(overflows, FinetuneRecipeTests.Metrics(run.Output)[^1]["fp16_overflow_steps"]!.GetValue<double>());
    }
}
