using System.Diagnostics;
using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Config;
using M3Train.Runtime;
using M3Train.Tests.Data;
using M3Train.Training;
using M3Train.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

public class FinetuneRecipeTests(ITestOutputHelper output)
{
    static Dictionary<string, Tensor> Weights(string folder)
    {
        using var c = M3Checkpoint.Load(folder);
        return c.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
    }

    static void AssertBitIdentical(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, v) in a)
            Assert.True(v.equal(b[k]).all().item<bool>(), $"{k} differs");
    }

    internal static List<JsonNode> Metrics(string output) =>
        File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();

    [Fact]
    public void ResumingFromACheckpointGivesBitIdenticalWeights()
    {
        using var straight = new TinyRun();
        UnifiedFinetuneRecipe.Run(straight.Config(maxSteps: 8));

        // Time slices: the same train.stop_after on every invocation, each one training that many more steps.
        using var sliced = new TinyRun();
        var slice = sliced.Config(maxSteps: 8) with { Train = sliced.Config().Train with { MaxSteps = 8, StopAfter = 3 } };
        var first = UnifiedFinetuneRecipe.Run(slice);
        Assert.Equal((3, 3), (first.Steps, first.SessionSteps));
        Assert.Null(first.FinalModel);
        var second = UnifiedFinetuneRecipe.Run(slice, new TrainerOptions { Resume = "latest" });
        Assert.Equal((6, 3), (second.Steps, second.SessionSteps));
        Assert.Null(second.FinalModel);
        var third = UnifiedFinetuneRecipe.Run(slice, new TrainerOptions { Resume = "latest" });
        Assert.Equal((8, 2), (third.Steps, third.SessionSteps));
        Assert.NotNull(third.FinalModel);

        AssertBitIdentical(Weights(Path.Combine(straight.Output, "final")), Weights(Path.Combine(sliced.Output, "final")));
        var a = Metrics(straight.Output).Select(m => m["loss"]!.GetValue<double>()).ToList();
        var b = Metrics(sliced.Output).Select(m => m["loss"]!.GetValue<double>()).ToList();
        Assert.Equal(a, b);
    }

    [Fact]
    public void ANonFiniteLossSkipsTheStepAndIsCounted()
    {
        using var run = new TinyRun();
        var result = TinyRun.Finetune(run.Config(maxSteps: 4), (_, objective) => new NonFiniteLossObjective(objective, micro => micro == 1));
        Assert.Equal(1, result.SkippedSteps);
        Assert.Equal(4, result.Steps);
        Assert.Equal(1, Metrics(run.Output).Last()["skipped_steps"]!.GetValue<double>());
    }

    [Fact]
    public void NonFiniteLossesInARowStopTheRunWithTheLastGoodWeightsSaved()
    {
        using var run = new TinyRun();
        var config = run.Config(maxSteps: 10);
        config = config with { Train = config.Train with { MaxBadStepsInARow = 3 } };
        var e = Assert.Throws<M3TrainException>(() => TinyRun.Finetune(config, (_, objective) => new NonFiniteLossObjective(objective, micro => micro >= 2)));
        Assert.Contains("3 non-finite losses in a row", e.Message);
        string saved = new CheckpointManager(run.Output, 10).Latest()!;
        Assert.Equal(2, TrainerState.Load(saved).Step);
    }

    [Fact]
    public void TrainingOnlyDenseAndSparseLeavesColbertUntouchedAndSavesIt()
    {
        using var run = new TinyRun();
        var config = run.Config(maxSteps: 3);
        UnifiedFinetuneRecipe.Run(config with { Model = config.Model with { Heads = [M3Head.Dense, M3Head.Sparse] } });
        var before = Weights(TinyRun.Repo("data", "models", "tiny-m3"));
        var after = Weights(Path.Combine(run.Output, "final"));
        Assert.True(File.Exists(Path.Combine(run.Output, "final", "colbert_linear.pt")));
        foreach (var k in before.Keys.Where(k => k.StartsWith("colbert_linear.", StringComparison.Ordinal)))
            Assert.True(before[k].equal(after[k]).all().item<bool>());
        Assert.False(before["sparse_linear.weight"].equal(after["sparse_linear.weight"]).all().item<bool>());
    }

    [Fact]
    public void FreezingTheEncoderChangesOnlyTheHeads()
    {
        using var run = new TinyRun();
        var config = run.Config(maxSteps: 3);
        UnifiedFinetuneRecipe.Run(config with { Train = config.Train with { Freeze = ["encoder"] } });
        var before = Weights(TinyRun.Repo("data", "models", "tiny-m3"));
        var after = Weights(Path.Combine(run.Output, "final"));
        foreach (var (k, v) in before)
        {
            bool head = k.StartsWith("colbert_linear.", StringComparison.Ordinal) || k.StartsWith("sparse_linear.", StringComparison.Ordinal);
            Assert.Equal(!head, v.equal(after[k]).all().item<bool>());
        }
    }

    [Fact]
    public void GradCacheGradientsEqualTheSinglePassOnTheModel()
    {
        // 16 queries x 4 passages in sub-batches of 4 texts, against the same batch in one pass.
        using var folder = new DataTestFolder();
        string file = folder.Write("train.jsonl", string.Join("\n", Enumerable.Range(0, 16).Select(i =>
            $"{{\"query\": \"query number {i} about topic {i % 5}\", \"pos\": [\"passage {i} answers topic {i % 5} in detail\"], " +
            $"\"neg\": [\"unrelated text {i}\", \"another negative {i * 7}\", \"third one {i * 3} here\"]}}")));
        var grads = new List<Dictionary<string, Tensor>>();
        foreach (int? subBatch in new int?[] { null, 4 })
        {
            using var run = new TinyRun();
            var config = run.Config(maxSteps: 1);
            config = config with
            {
                Data = config.Data with { Files = [file], BatchSizes = [16] },
                Train = config.Train with { SubBatchSize = subBatch },
            };
            using var setup = new TrainingSetup(config, new TrainerOptions());
            var batch = setup.Loader.Next();
            Assert.Equal(16, batch.BatchSize);
            UnifiedFinetuneRecipe.Objective(setup).Step(batch, new StepContext(1, 5));
            grads.Add(setup.Model.named_parameters().Where(p => p.parameter.grad is not null)
                .ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
        }
        Assert.Equal(grads[0].Keys.Order(), grads[1].Keys.Order());
        double worst = grads[0].Max(kv => (kv.Value - grads[1][kv.Key]).abs().max().item<float>());
        output.WriteLine($"max |grad difference| single pass vs GradCache(4): {worst:E2}");
        Assert.True(worst < 1e-5, $"max gradient difference {worst}");
    }

    [Fact]
    public void TheLoopReportsEveryStepThroughTheProgressObserver()
    {
        var previous = ProgressTask.Observer;
        var seen = new RecordingObserver();
        ProgressTask.Observer = seen;
        try
        {
            using var run = new TinyRun();
            UnifiedFinetuneRecipe.Run(run.Config(maxSteps: 3));
        }
        finally
        {
            ProgressTask.Observer = previous;
        }
        var task = Assert.Single(seen.Begun, t => t.Label == "finetune");
        Assert.Equal([1, 2, 3], seen.Done);
        // The run's mean loss, lr and throughput, then the last logged step's loss and losses per head, each named as such.
        Assert.Equal(["mean loss", "lr", "tok/s", "step 3 loss", "dense", "sparse", "colbert", "ensemble", "distill"], task.Metrics.Select(m => m.Name));
        Assert.Contains(task, seen.Finished);
    }

    sealed class RecordingObserver : IProgressObserver
    {
        public List<ProgressTask> Begun { get; } = [];
        public List<long> Done { get; } = [];
        public List<ProgressTask> Finished { get; } = [];

        public void Started(ProgressTask task) => Begun.Add(task);
        public void Updated(ProgressTask task) => Done.Add(task.Done);
        public void Ended(ProgressTask task) => Finished.Add(task);
    }

    [Fact]
    public void EveryShippedConfigLoads()
    {
        var files = Directory.GetFiles(TinyRun.Repo("configs"), "*.yaml", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(TinyRun.Repo("configs"), "*.json", SearchOption.AllDirectories)).ToList();
        Assert.NotEmpty(files);
        foreach (var f in files)
        {
            var c = RunConfig.Load(f);
            Assert.False(string.IsNullOrEmpty(c.Model.Path), f);
        }
    }

    [Trait("Category", "Slow")]
    [Fact]
    public void QuickstartLossFalls()
    {
        using var run = new TinyRun();
        var quick = RunConfig.Load(TinyRun.Repo("configs", "quickstart.yaml"));
        var config = quick with
        {
            OutputDir = run.Output,
            Model = quick.Model with { Path = TinyRun.Repo(quick.Model.Path) },
            Data = quick.Data with { Files = quick.Data.Files.Select(f => TinyRun.Repo(f)).ToList(), CacheTokenCounts = false },
            Train = quick.Train with { Epochs = 6, LogEvery = 1, Tensorboard = false },
        };
        var result = UnifiedFinetuneRecipe.Run(config);
        var losses = Metrics(run.Output).Select(m => m["loss"]!.GetValue<double>()).ToList();
        int epoch = losses.Count / 6;
        double firstEpoch = losses.Take(epoch).Average(), lastEpoch = losses.Skip(losses.Count - epoch).Average();
        output.WriteLine($"quickstart (6 epochs): mean loss first epoch {firstEpoch:F4}, last epoch {lastEpoch:F4}");
        Assert.True(lastEpoch < 0.8 * firstEpoch);
        Assert.True(File.Exists(Path.Combine(result.FinalModel!, "model.safetensors")));
    }

    [Trait("Category", "Slow")]
    [Fact]
    public void AKilledRunResumesAndFinishes()
    {
        using var run = new TinyRun();
        var config = run.Config(maxSteps: 400, saveEvery: 20);
        string configPath = Path.Combine(Path.GetTempPath(), $"m3-kill-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(configPath, ConfigWriter.ToYaml(config with { Train = config.Train with { LogEvery = 20 } }));
        try
        {
            string cli = Path.Combine(AppContext.BaseDirectory, "m3train.dll");
            using (var p = Process.Start(new ProcessStartInfo("dotnet", ["exec", cli, "finetune", "--config", configPath])
                   { RedirectStandardError = true, RedirectStandardOutput = true })!)
            {
                var manager = new CheckpointManager(run.Output, 10);
                var clock = Stopwatch.StartNew();
                while (manager.List().Count < 2 && !p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(20);
                Assert.False(p.HasExited, "the run ended before it could be killed: " + (p.HasExited ? p.StandardError.ReadToEnd() : ""));
                p.Kill(entireProcessTree: true); // SIGKILL: no chance to save
                p.WaitForExit();
            }
            var left = new CheckpointManager(run.Output, 10).List();
            Assert.NotEmpty(left);
            int lastSaved = left[^1].Step;
            Assert.All(left, c => Assert.True(File.Exists(Path.Combine(c.Path, TrainerState.FileName))));

            using var resumed = Process.Start(new ProcessStartInfo("dotnet", ["exec", cli, "finetune", "--config", configPath, "--resume"])
                { RedirectStandardError = true, RedirectStandardOutput = true })!;
            string log = resumed.StandardError.ReadToEnd();
            resumed.WaitForExit();
            Assert.True(resumed.ExitCode == 0, $"exit code {resumed.ExitCode}\n{log}");
            Assert.Contains($"at step {lastSaved}", log);
            Assert.True(File.Exists(Path.Combine(run.Output, "final", "model.safetensors")));
            output.WriteLine($"killed after checkpoint {lastSaved}; resumed and finished 400 steps");
        }
        finally { File.Delete(configPath); }
    }
}
