using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Config;
using M3Train.Training;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

/// <summary>The paper's staged recipe as one run (<c>stages:</c>): configs/quickstart-staged.yaml end to end on CPU.</summary>
public sealed class StagedRunTests
{
    /// <summary>The shipped tiny staged config, its relative paths made absolute, writing into <paramref name="run"/>.</summary>
    static RunConfig Config(TinyRun run, params string[] sets)
    {
        var c = RunConfig.Load(TinyRun.Repo("configs", "quickstart-staged.yaml"), sets);
        return c with
        {
            OutputDir = run.Output,
            Model = c.Model with { Path = TinyRun.Repo(c.Model.Path) },
            Data = c.Data with { Files = c.Data.Files.Select(f => TinyRun.Repo(f)).ToList(), CacheTokenCounts = false },
            Train = c.Train with { Tensorboard = false },
        };
    }

    static Dictionary<string, Tensor> Weights(string folder) =>
        SafetensorsFile.Read(Path.Combine(folder, "model.safetensors")).ToDictionary(kv => kv.Key, kv => kv.Value);

    static Dictionary<string, Tensor> Heads(string folder)
    {
        using var checkpoint = M3Checkpoint.Load(folder);
        return checkpoint.Model.SparseHead.named_parameters().Select(p => ("sparse." + p.name, p.parameter.detach().clone()))
            .Concat(checkpoint.Model.ColbertHead.named_parameters().Select(p => ("colbert." + p.name, p.parameter.detach().clone())))
            .ToDictionary(x => x.Item1, x => x.Item2);
    }

    static bool Equal(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b) =>
        a.Keys.Order().SequenceEqual(b.Keys.Order()) && a.All(kv => kv.Value.equal(b[kv.Key]).all().item<bool>());

    static string Stage(TinyRun run, string name) => Path.Combine(run.Output, "stages", name);

    [Fact]
    public void ThreeStagesRunInOneFolderAndAResumeInStageTwoEndsWithTheWeightsOfAnUninterruptedRun()
    {
        using var straight = new TinyRun();
        var whole = UnifiedFinetuneRecipe.Run(Config(straight));
        Assert.False(whole.Stopped);
        Assert.Equal((48, 48), (whole.Steps, whole.TotalSteps));
        Assert.Equal(Path.Combine(straight.Output, "final"), whole.FinalModel);

        // Stage 1 trains the dense head alone: the other heads leave it as they came; stage 2 trains them.
        var start = Heads(TinyRun.Repo("data", "models", "tiny-m3-pretrained"));
        Assert.True(Equal(start, Heads(Path.Combine(Stage(straight, "1-dense-warmup"), "final"))));
        Assert.False(Equal(start, Heads(Path.Combine(Stage(straight, "2-heads-warmup"), "final"))));
        // Only the last stage distils; each stage's checkpoints record their stage.
        var metrics = File.ReadLines(Path.Combine(Stage(straight, "3-unified"), "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.All(metrics, m => Assert.NotNull(m["loss_distill"]));
        Assert.DoesNotContain("loss_distill", File.ReadAllText(Path.Combine(Stage(straight, "2-heads-warmup"), "metrics.jsonl")));
        Assert.DoesNotContain("loss_sparse", File.ReadAllText(Path.Combine(Stage(straight, "1-dense-warmup"), "metrics.jsonl")));
        var last = new CheckpointManager(Stage(straight, "2-heads-warmup"), 2).Latest()!;
        Assert.Equal("2/3 heads-warmup", TrainerState.Load(last).Stage);
        // Stage 2 continued the data where stage 1 stopped, rather than from the start.
        Assert.NotEqual(TrainerState.Load(new CheckpointManager(Stage(straight, "1-dense-warmup"), 2).Latest()!).Loader,
            TrainerState.Load(last).Loader);

        using var sliced = new TinyRun();
        var stopped = UnifiedFinetuneRecipe.Run(Config(sliced, "train.stop_after=18"));
        Assert.True(stopped.Stopped);
        Assert.Equal(18, stopped.Steps);
        Assert.Null(stopped.FinalModel);
        var middle = TrainerState.Load(new CheckpointManager(Stage(sliced, "2-heads-warmup"), 2).Latest()!);
        Assert.Equal(("2/3 heads-warmup", 6), (middle.Stage, middle.Step));
        Assert.False(Directory.Exists(Stage(sliced, "3-unified")));

        var resumed = UnifiedFinetuneRecipe.Run(Config(sliced), new TrainerOptions { Resume = "latest" });
        Assert.False(resumed.Stopped);
        Assert.Equal((48, 48), (resumed.Steps, resumed.TotalSteps));
        Assert.True(Equal(Weights(whole.FinalModel!), Weights(resumed.FinalModel!)), "the resumed run's encoder differs from the uninterrupted run's");
        Assert.True(Equal(Heads(whole.FinalModel!), Heads(resumed.FinalModel!)), "the resumed run's heads differ from the uninterrupted run's");

        // A finished run resumed again has nothing left to train.
        Assert.Equal(48, UnifiedFinetuneRecipe.Run(Config(sliced), new TrainerOptions { Resume = "latest" }).Steps);
    }

    [Fact]
    public void TheReferenceConfigIsThePapersStagedRecipeWithSubBatchesForTheLongBins()
    {
        var config = RunConfig.Load(TinyRun.Repo("configs", "bge-m3-finetune.yaml"));
        Assert.Equal(["dense-warmup", "heads-warmup", "unified"], config.Stages.Select(s => s.Name));
        Assert.Equal([M3Train.Training.Losses.M3Head.Dense], config.Stages[0].Heads);
        Assert.Equal([false, false, true], config.Stages.Select(s => s.UseSelfDistill ?? config.Loss.UseSelfDistill));
        Assert.Equal(6000, config.Stages.Take(2).Sum(s => s.MaxSteps));     // the paper's ~6000 warm-up steps
        Assert.Equal([48, 32, 20, 18, 14, 14, 12, 10, 8], config.Data.BatchSizes);
        // The last bin's 8 queries x 8 passages go through GradCache in sub-batches, the short bins in one pass.
        var sub = SubBatching.Of(config.Train);
        Assert.Null(sub.Of(0));
        Assert.InRange(sub.Of(8)!.Value, 1, 8 * 8 - 1);
    }

    [Fact]
    public void AFreshRunRefusesAFolderWithStagesAndStagesAreChecked()
    {
        using var run = new TinyRun();
        UnifiedFinetuneRecipe.Run(Config(run, "train.stop_after=2"));
        var again = Assert.Throws<M3TrainException>(() => UnifiedFinetuneRecipe.Run(Config(run)));
        Assert.Contains("--resume latest", again.Message);

        const string Yaml = "model: {path: m}\nstages:\n  - {name: a, max_steps: 2}\n  - {name: a, max_steps: 2}\n";
        Assert.Contains("two stages are named 'a'", Assert.Throws<ConfigException>(() => ConfigLoader.FromText<RunConfig>(Yaml, "s.yaml")).Message);
        Assert.Contains("stages[0].name", Assert.Throws<ConfigException>(() =>
            ConfigLoader.FromText<RunConfig>("model: {path: m}\nstages:\n  - {name: 'a/b'}\n", "s.yaml")).Message);
        Assert.Contains("stages[0].lrr", Assert.Throws<ConfigException>(() =>
            ConfigLoader.FromText<RunConfig>("model: {path: m}\nstages:\n  - {name: a, lrr: 1}\n", "s.yaml")).Message);
    }
}
