using M3Train.Tests.Checkpoints;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Training;

/// <summary>
/// The dense alarm on constructed scores, and on real runs: the shipped tiny-m3 (random weights, every CLS embedding
/// alike) collapses, the pretrained quickstart model does not. Reads the runs' log.jsonl, so it runs alone.
/// </summary>
[Collection(SerilogCaptureCollection.Name)]
public class DenseCollapseAlarmTests
{
    [Fact]
    public void GoesOffAfterTheWindowOnceAndHoldsUntilAHealthyStep()
    {
        using var log = new LogCapture();
        var alarm = new DenseCollapseAlarm(gap: 0.02, window: 3);
        Assert.Null(alarm.Observe(1.0, 0.9999, step: 5));
        Assert.Null(alarm.Observe(0.9995, 0.999, step: 10));
        string? raised = alarm.Observe(1.0, 0.9998, step: 15);
        Assert.StartsWith("dense collapsed: pos 1.000 ≈ neg 1.000", raised);
        Assert.Single(log.Warnings, w => w.StartsWith("Step 15: dense_pos 1.0000 and dense_neg 0.9998", StringComparison.Ordinal));
        Assert.NotNull(alarm.Observe(1.0, 0.999, step: 20));   // still collapsed: held, not warned again
        Assert.Single(log.Warnings);
        Assert.Null(alarm.Observe(0.97, 0.72, step: 25));      // a healthy step clears it
    }

    [Theory]
    [InlineData(0.8, 0.5)]      // separated
    [InlineData(0.99, 0.96)]    // near 1, but positives clearly above
    [InlineData(0.3, 0.29)]     // alike, but far from 1: not the collapse of every embedding into one direction
    public void HealthyScoresNeverRaiseIt(double positive, double negative)
    {
        var alarm = new DenseCollapseAlarm(gap: 0.02, window: 1);
        for (int step = 1; step <= 5; step++) Assert.Null(alarm.Observe(positive, negative, step));
    }

    [Fact]
    public void TheRandomTinyModelIsWarnedAboutAndThePretrainedOneIsNot()
    {
        static IReadOnlyList<string> Warnings(string model)
        {
            using var run = new TinyRun();
            var config = run.Config(maxSteps: 4);
            config = config with
            {
                Model = config.Model with { Path = TinyRun.Repo("data", "models", model) },
                Train = config.Train with { DenseCollapseWindow = 2 },
            };
            UnifiedFinetuneRecipe.Run(config);
            return File.ReadAllLines(Path.Combine(run.Output, "log.jsonl")).Where(l => l.Contains("dense head has collapsed")).ToList();
        }
        Assert.Single(Warnings("tiny-m3"));
        Assert.Empty(Warnings("tiny-m3-pretrained"));
    }
}
