using M3Train.Tests.Checkpoints;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Training;

/// <summary>Resuming real runs of the tiny model: another step count, another config, a damaged newest checkpoint, a lost head file.</summary>
[Collection(SerilogCaptureCollection.Name)]
public sealed class ResumeRunTests
{
    static RunConfig Stopped(TinyRun run, int maxSteps, int stopAfter)
    {
        var config = run.Config(maxSteps: maxSteps, saveEvery: 1);
        return config with { Train = config.Train with { StopAfter = stopAfter } };
    }

    [Fact]
    public void ALargerMaxStepsWhenResumingIsHonouredAndASmallerOneRefused()
    {
        using var run = new TinyRun();
        UnifiedFinetuneRecipe.Run(Stopped(run, maxSteps: 4, stopAfter: 2));

        var tooFew = Assert.Throws<M3TrainException>(() => UnifiedFinetuneRecipe.Run(run.Config(maxSteps: 2), new TrainerOptions { Resume = "latest" }));
        Assert.Contains("train.max_steps 2", tooFew.Message);
        Assert.Contains("at step 2 of 4", tooFew.Message);

        var result = UnifiedFinetuneRecipe.Run(run.Config(maxSteps: 5), new TrainerOptions { Resume = "latest" });
        Assert.Equal(5, result.Steps);
        Assert.Equal(5, result.TotalSteps);
        var warnings = File.ReadAllLines(Path.Combine(run.Output, "log.jsonl")).Where(l => l.Contains("\"@l\":\"Warning\"")).ToList();
        Assert.Contains(warnings, w => w.Contains("differs from the checkpoint's") && w.Contains("\"Requested\":5") && w.Contains("\"Total\":4"));
        Assert.Contains(warnings, w => w.Contains("train.max_steps: 4 \\u2192 5") || w.Contains("train.max_steps: 4 → 5"));
    }

    [Fact]
    public void ResumeLatestPassesOverADamagedNewestCheckpointAndFinishes()
    {
        using var run = new TinyRun();
        UnifiedFinetuneRecipe.Run(Stopped(run, maxSteps: 4, stopAfter: 3));
        var manager = new CheckpointManager(run.Output, 10);
        string newest = manager.List()[^1].Path;
        File.WriteAllBytes(Path.Combine(newest, "optimizer.bin"), []);

        using var log = new LogCapture();
        var result = UnifiedFinetuneRecipe.Run(run.Config(maxSteps: 4, saveEvery: 1), new TrainerOptions { Resume = "latest" });
        Assert.Equal(4, result.Steps);
        Assert.Contains(log.Warnings, w => w.Contains(CheckpointManager.NameOf(3)) && w.Contains("newest complete one"));
    }

    [Fact]
    public void AResumedCheckpointWithoutItsHeadFilesIsAnErrorNotFreshHeads()
    {
        using var run = new TinyRun();
        UnifiedFinetuneRecipe.Run(Stopped(run, maxSteps: 4, stopAfter: 2));
        string newest = new CheckpointManager(run.Output, 10).List()[^1].Path;
        File.Delete(Path.Combine(newest, "sparse_linear.pt"));
        File.Delete(Path.Combine(newest, CheckpointManager.ManifestFile));

        using var log = new LogCapture();
        var error = Assert.Throws<M3TrainException>(() => UnifiedFinetuneRecipe.Run(run.Config(maxSteps: 4), new TrainerOptions { Resume = newest }));
        Assert.Contains("sparse_linear.pt missing", error.Message);
    }
}
