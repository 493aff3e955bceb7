using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using M3Train.Config;
using M3Train.Data;
using M3Train.Distributed;
using M3Train.Training.Losses;
using M3Train.Tests.Data;
using M3Train.Tests.Distributed;
using M3Train.Tests.Training;
using M3Train.Tests.Training.Pretraining;
using M3Train.Text;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.DataParallel;

/// <summary>
/// Data-parallel training as users run it: <c>m3train finetune --devices cpu,cpu</c> (which starts one process per
/// device) and ranks started by hand with torchrun's variables, on the shipped tiny model and data.
/// </summary>
[Trait("Category", "Slow")]
public class DataParallelRunTests : IDisposable
{
    const int SigKill = 9, SigTerm = 15, SigStop = 19;
    static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);
    static readonly Dictionary<string, string> NoVariables = [];

    readonly string _folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"m3-dp-{Guid.NewGuid():N}");
    readonly TinyRun _tiny = new();

    public DataParallelRunTests() => Directory.CreateDirectory(_folder);

    public void Dispose()
    {
        _tiny.Dispose();
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    string Path(params string[] parts) => System.IO.Path.Combine([_folder, .. parts]);

    /// <summary>
    /// The tiny run of the pretrained tiny model (whose dense embeddings differ, so other ranks' passages weigh in the
    /// gradient) with the dense head alone, whose loss does not depend on how the global batch is sliced across ranks,
    /// written as a config file; output in <paramref name="output"/> (relative paths resolve where m3train runs).
    /// </summary>
    string Config(string name, string output, int perRankBatch, int maxSteps, int? subBatch = null, int saveEvery = 0) =>
        Write(name, DenseConfig(output, perRankBatch, maxSteps, subBatch, saveEvery));

    RunConfig DenseConfig(string output, int perRankBatch, int maxSteps, int? subBatch = null, int saveEvery = 0)
    {
        var c = _tiny.Config(maxSteps, saveEvery);
        return c with
        {
            OutputDir = output,
            Model = c.Model with { Path = ThreadRanks.ModelDir, Heads = [M3Head.Dense] },
            Data = c.Data with { BatchSizes = [perRankBatch] },
            Train = c.Train with { SubBatchSize = subBatch, ActivationCheckpointing = true },
        };
    }

    string Write(string name, RunConfig config)
    {
        string file = Path($"{name}.yaml");
        File.WriteAllText(file, ConfigWriter.ToYaml(config));
        return file;
    }

    static M3TrainRun Start(params string[] args) => new(NoVariables, args);

    static void Succeeds(M3TrainRun run)
    {
        int code = run.WaitForExit(Patience);
        Assert.True(code == 0, $"exit code {code}:\n{run.Output}");
    }

    static List<(double Loss, double GradNorm)> Metrics(string output) =>
        File.ReadAllLines(System.IO.Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Select(l => (l["loss"]!.GetValue<double>(), l["grad_norm"]!.GetValue<double>())).ToList();

    static void AssertCurvesMatch(IReadOnlyList<(double Loss, double GradNorm)> want, IReadOnlyList<(double Loss, double GradNorm)> got, double tolerance)
    {
        Assert.Equal(want.Count, got.Count);
        for (int i = 0; i < want.Count; i++)
        {
            Assert.True(Math.Abs(want[i].Loss - got[i].Loss) <= tolerance * Math.Max(1, Math.Abs(want[i].Loss)), $"step {i + 1}: loss {got[i].Loss} vs {want[i].Loss}");
            Assert.True(Math.Abs(want[i].GradNorm - got[i].GradNorm) <= tolerance * Math.Max(1, want[i].GradNorm), $"step {i + 1}: grad_norm {got[i].GradNorm} vs {want[i].GradNorm}");
        }
    }

    /// <summary>Two ranks started by hand as torchrun starts them (no launcher), each in its own working directory.</summary>
    static M3TrainRun[] HandStarted(int port, string[] directories, string[] args, string timeoutSeconds = "45")
    {
        string token = JobToken.Generate().Value;
        return Enumerable.Range(0, 2).Select(rank => M3TrainRun.In(directories[rank], new Dictionary<string, string>
        {
            ["RANK"] = $"{rank}", ["WORLD_SIZE"] = "2", ["LOCAL_RANK"] = $"{rank}", ["LOCAL_WORLD_SIZE"] = "2",
            ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = $"{port - 1}", ["M3_JOB_TOKEN"] = token, ["M3_DIST_TIMEOUT"] = timeoutSeconds,
        }, args)).ToArray();
    }

    [Theory]
    [InlineData(null)]
    [InlineData(2)]
    public void TwoProcessesWithHalfTheBatchTrainAsOneWithAllOfIt(int? subBatch)
    {
        using var one = Start("finetune", "--config", Config("one", Path("one"), perRankBatch: 6, maxSteps: 4, subBatch));
        Succeeds(one);
        using var two = Start("finetune", "--config", Config("two", Path("two"), perRankBatch: 3, maxSteps: 4, subBatch), "--devices", "cpu,cpu");
        Succeeds(two);

        Assert.Contains("launch: all 2 ranks finished", two.Output);
        Assert.Contains("[rank 0] ", two.Output);
        Assert.Matches(new Regex(@"Weights identical on all 2 ranks \(digest [0-9a-f]{16}\)"), two.Output);
        Assert.Contains("Global batch: 2 rank(s) x data.batch_sizes [3] = [6] queries", two.Output);
        // The ranks split the machine's cores: neither asks for the threads one process alone would take.
        Assert.Matches(new Regex(@"\[rank 1\] .*Threads: \d+ intra-op \(default: cores / ranks - inter-op - loaders.*shared by 2 ranks"), two.Output);
        // Each step's loss and gradient norm: the same computation, summed in another order.
        AssertCurvesMatch(Metrics(Path("one")), Metrics(Path("two")), 1e-5);
        Assert.True(File.Exists(Path("two", "logs", "rank-1.log")) && File.Exists(Path("two", "logs", "rank-1.jsonl")));
    }

    /// <summary>
    /// The unified loss of every head, whose sparse and multi-vector scores stay on each rank: the first step of two
    /// processes (its loss and the norm of the gradient averaged over them) against the formula computed by hand in this
    /// process on the two slices of the same global batch, which the test's own loaders cut as the ranks' do.
    /// </summary>
    [Theory]
    [InlineData(CrossDeviceGradient.Exact, null)]
    [InlineData(CrossDeviceGradient.Exact, 2)]
    [InlineData(CrossDeviceGradient.Local, null)]
    [InlineData(CrossDeviceGradient.Local, 2)]
    public void TwoProcessesGiveTheHandBuiltUnifiedStepInEitherGradientMode(CrossDeviceGradient gradient, int? subBatch)
    {
        var c = DenseConfig(Path("unified"), perRankBatch: 3, maxSteps: 1, subBatch);
        c = c with
        {
            Model = c.Model with { Heads = [.. Enum.GetValues<M3Head>()] },
            Data = c.Data with { TrainGroupSize = 3 },
            Loss = c.Loss with { MaskDuplicateNegatives = false, SelfDistillStartStep = -1, CrossDeviceGradient = gradient },
        };
        using var two = Start("finetune", "--config", Write("unified", c), "--devices", "cpu,cpu");
        Succeeds(two);
        var (loss, gradNorm) = Assert.Single(Metrics(Path("unified")));

        var tokenizer = XlmrTokenizer.FromFolder(c.Model.Path);
        using var data = TrainData.Load(c.Data, tokenizer);
        var halves = Enumerable.Range(0, 2).Select(rank =>
        {
            using var loader = new TrainDataLoader(data, tokenizer, c.Train.Seed, worldSize: 2, rank, _ => subBatch);
            return loader.Next();
        }).ToArray();
        static double Norm(Dictionary<string, TorchSharp.torch.Tensor> grads) => Math.Sqrt(grads.Values.Sum(g => g.pow(2).sum().item<float>()));
        var (want, grads) = DataParallelObjectiveTests.HandBuilt(halves, c.Loss, exact: gradient == CrossDeviceGradient.Exact, microStep: 0);
        double wantNorm = Norm(grads);
        Assert.True(Math.Abs(want - loss) <= 1e-5 * Math.Max(1, Math.Abs(want)), $"loss {loss} vs {want} by hand");
        Assert.True(Math.Abs(wantNorm - gradNorm) <= 1e-5 * Math.Max(1, wantNorm), $"grad_norm {gradNorm} vs {wantNorm} by hand");
        // The other gradient mode's norm is far off: the comparison tells the modes apart.
        var (_, otherGrads) = DataParallelObjectiveTests.HandBuilt(halves, c.Loss, exact: gradient != CrossDeviceGradient.Exact, microStep: 0);
        double otherNorm = Norm(otherGrads);
        Assert.True(Math.Abs(otherNorm - gradNorm) > 1e-2 * wantNorm, $"grad_norm {gradNorm}, the other mode's {otherNorm}");
    }

    [Fact]
    public void ATwoProcessRunResumesOnOneAndOnThreeAndAgainWithTheSameGlobalBatch()
    {
        using var straight = Start("finetune", "--config", Config("straight", Path("straight"), perRankBatch: 3, maxSteps: 6), "--devices", "cpu,cpu");
        Succeeds(straight);
        string config = Config("sliced", Path("sliced"), perRankBatch: 3, maxSteps: 6);
        using var first = Start("finetune", "--config", config, "--devices", "cpu,cpu", "--set", "train.stop_after=3");
        Succeeds(first);
        CopyFolder(Path("sliced"), Path("sliced3"));

        // The config of the new process count keeps the first run's per-rank size; the setup rescales it. Each
        // resume trains one step, and is resumed again: the checkpoint's global batch counts, not the config's sizes.
        using var onOne = Start("finetune", "--config", config, "--resume", "latest", "--devices", "cpu", "--set", "train.stop_after=1");
        Succeeds(onOne);
        Assert.Contains("Resuming a 2-rank run on 1 ranks: global batch [6] kept, per-rank data.batch_sizes [3] -> [6]", onOne.Output);
        using var onOneAgain = Start("finetune", "--config", config, "--resume", "latest", "--devices", "cpu");
        Succeeds(onOneAgain);
        Assert.Contains("Resuming a 1-rank run on 1 ranks: global batch [6] kept, per-rank data.batch_sizes [3] -> [6]", onOneAgain.Output);
        using var onThree = Start("finetune", "--config", config, "--resume", "latest", "--devices", "cpu,cpu,cpu", "--set", $"output_dir={Path("sliced3")}",
            "--set", "train.stop_after=1");
        Succeeds(onThree);
        Assert.Contains("global batch [6] kept, per-rank data.batch_sizes [3] -> [2]", onThree.Output);
        using var onTwo = Start("finetune", "--config", config, "--resume", "latest", "--devices", "cpu,cpu", "--set", $"output_dir={Path("sliced3")}");
        Succeeds(onTwo);
        Assert.DoesNotContain("kept, per-rank", onTwo.Output);

        var expected = Metrics(Path("straight"));
        AssertCurvesMatch(expected, Metrics(Path("sliced")), 1e-4);
        AssertCurvesMatch(expected, Metrics(Path("sliced3")), 1e-4);
    }

    [Fact]
    public void AKilledRankEndsTheOtherWithinAMinuteNamingItAndTheRunResumes()
    {
        string config = Config("kill", Path("kill"), perRankBatch: 2, maxSteps: 5000, saveEvery: 3);
        var ranks = HandStarted(LocalJob.FreePort(), [_folder, _folder], ["finetune", "--config", config]);
        using var rank0 = ranks[0];
        using var rank1 = ranks[1];
        rank0.WaitForLine(l => l.Contains("INF Checkpoint "), Patience);
        double killedAt = rank0.Seconds;
        M3TrainRun.Signal(rank1.Pid, SigKill);
        int code = rank0.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.True(rank0.Seconds - killedAt < 60, $"took {rank0.Seconds - killedAt:F1} s");
        Assert.NotEqual(0, code);
        Assert.Contains("error: rank 1 is gone", rank0.Output);

        // The newest checkpoint is whole: a single process continues from it.
        var latest = new CheckpointManager(Path("kill"), 10).Latest()!;
        int step = TrainerState.Load(latest).Step;
        using var resumed = Start("finetune", "--config", config, "--resume", "latest", "--set", $"train.max_steps={step + 2}");
        Succeeds(resumed);
        Assert.Equal(step + 2, Metrics(Path("kill")).Count);
    }

    [Fact]
    public void AStalledRankEndsTheOtherAfterTheTimeoutNamingIt()
    {
        string config = Config("stall", Path("stall"), perRankBatch: 2, maxSteps: 5000, saveEvery: 3);
        var ranks = HandStarted(LocalJob.FreePort(), [_folder, _folder], ["finetune", "--config", config], timeoutSeconds: "5");
        using var rank0 = ranks[0];
        using var rank1 = ranks[1];
        rank0.WaitForLine(l => l.Contains("INF Checkpoint "), Patience);
        double stoppedAt = rank0.Seconds;
        M3TrainRun.Signal(rank1.Pid, SigStop);
        Assert.NotEqual(0, rank0.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.InRange(rank0.Seconds - stoppedAt, 4, 60);
        // Stuck in a step's collective, or at a checkpoint's barrier: either way rank 1 is named.
        Assert.Matches(new Regex(@"error: rank 0 failed: (.* timed out after 5 s: (no data came from rank 1|rank 1 took no data)|barrier 'checkpoint' timed out after 5 s: rank 1 did not arrive)"), rank0.Output);
    }

    [Fact]
    public void ASignalToOneRankStopsEveryRankAtTheSameStepWithACheckpoint()
    {
        string config = Config("signal", Path("signal"), perRankBatch: 2, maxSteps: 5000);
        var ranks = HandStarted(LocalJob.FreePort(), [_folder, _folder], ["finetune", "--config", config]);
        using var rank0 = ranks[0];
        using var rank1 = ranks[1];
        rank0.WaitForLine(l => Regex.IsMatch(l, @"INF step [2-9]\d*/5000"), Patience);
        M3TrainRun.Signal(rank1.Pid, SigTerm);
        Assert.Equal(130, rank1.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Equal(130, rank0.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Contains("a stop signal on another rank: saving a checkpoint at step", rank0.Output);
        var latest = new CheckpointManager(Path("signal"), 10).Latest()!;
        int step = TrainerState.Load(latest).Step;
        Assert.Equal(step, Metrics(Path("signal")).Count);
        using var resumed = Start("finetune", "--config", config, "--resume", "latest", "--devices", "cpu,cpu", "--set", $"train.max_steps={step + 2}");
        Succeeds(resumed);
        Assert.Equal(step + 2, Metrics(Path("signal")).Count);
    }

    [Fact]
    public void OnlyRankZeroWritesTheRunFolderAndStrangersAtTheRendezvousPortDoNotDisturbTheRun()
    {
        // Rank 1 runs in another directory: the run folder it would write, "run" relative to it, shows what it writes.
        // Rank 0 also evaluates every 15 steps and keeps the best model, while rank 1 waits.
        Directory.CreateDirectory(Path("rank0"));
        Directory.CreateDirectory(Path("rank1"));
        var c = DenseConfig("run", perRankBatch: 2, maxSteps: 30, saveEvery: 10);
        c = c with
        {
            Train = c.Train with
            {
                Eval = new TrainEvalConfig { Beir = TinyRun.Repo("data", "beir-sample"), Every = 15, Modes = ["dense"], MaxQueryLength = 32, MaxPassageLength = 64 },
                SaveBest = new SaveBestConfig { Metric = "eval_dense_ndcg@10" },
            },
        };
        string config = Write("relative", c);
        int port = LocalJob.FreePort();
        var strangers = new List<Socket>();
        var refusals = new List<string>();
        var attacker = Background.Run(() => StrangerTests.Attack(port, strangers, refusals));
        var ranks = HandStarted(port, [Path("rank0"), Path("rank1")], ["finetune", "--config", config]);
        using var rank0 = ranks[0];
        using var rank1 = ranks[1];
        Succeeds(rank0);
        Succeeds(rank1);
        attacker.Result(Background.Patience);

        var written = Directory.EnumerateFileSystemEntries(Path("rank1", "run"), "*", SearchOption.AllDirectories)
            .Select(p => System.IO.Path.GetRelativePath(Path("rank1", "run"), p)).Order().ToList();
        Assert.Equal(["logs", System.IO.Path.Combine("logs", "rank-1.jsonl")], written);
        Assert.True(Directory.Exists(Path("rank0", "run", "final")) && File.Exists(Path("rank0", "run", "metrics.jsonl")));
        Assert.True(File.Exists(Path("rank0", "run", "best", TrainingEvaluator.BestFile)));
        Assert.Equal(2, File.ReadLines(Path("rank0", "run", "metrics.jsonl")).Count(l => l.Contains("eval_dense_ndcg@10")));
        Assert.Equal(3, new CheckpointManager(Path("rank0", "run"), 10).List().Count);
        Assert.Contains(refusals, r => r.Contains("refused rank 1's job token"));
        Assert.All(strangers, s => Assert.True(StrangerTests.ClosedByServer(s)));
        Assert.Contains("rendezvous: dropped a connection", rank0.Output);
    }

    [Fact]
    public void ARankThatRaisesEndsTheOthersWithItsError()
    {
        // Rank 0 cannot write its first checkpoint (a file where the checkpoints folder goes); rank 1 waits for it.
        Directory.CreateDirectory(Path("raise"));
        File.WriteAllText(Path("raise", "checkpoints"), "in the way");
        using var run = Start("finetune", "--config", Config("raise", Path("raise"), perRankBatch: 2, maxSteps: 10, saveEvery: 2), "--devices", "cpu,cpu");
        Assert.NotEqual(0, run.WaitForExit(TimeSpan.FromSeconds(150)));
        Assert.Matches(new Regex(@"\[rank 1\] error: rank 0 failed: .*writing the checkpoint failed"), run.Output);
        Assert.Contains("[rank 0] error: ", run.Output);
    }

    [Fact]
    public void RetroMaeTrainsOnTwoProcessesWithOneDecoderOnEach()
    {
        using var pretrain = new PretrainRun();
        var c = pretrain.Config(PretrainObjective.Retromae, maxSteps: 2);
        c = c with { OutputDir = Path("retromae"), Data = c.Data with { BatchSizes = [4] } };
        string file = Path("retromae.yaml");
        File.WriteAllText(file, ConfigWriter.ToYaml(c));
        using var run = Start("pretrain", "--config", file, "--devices", "cpu,cpu");
        Succeeds(run);
        // The decoder's weights were checked equal on both ranks before each checkpoint, and rank 0 saved them.
        Assert.True(File.Exists(Path("retromae", "final", M3Train.Training.Pretraining.RetroMaeDecoder.FileName)));
        Assert.Equal(2, Metrics(Path("retromae")).Count);
    }

    [Fact]
    public void AStagedRunTrainsEveryStageOnTwoProcesses()
    {
        // The shipped staged quickstart, its global batch of 4 split over two ranks.
        using var run = M3TrainRun.In(DataTestFolder.RepoRoot, NoVariables, "finetune", "--config", "configs/quickstart-staged.yaml",
            "--devices", "cpu,cpu", "--set", $"output_dir={Path("staged")}", "--set", "data.batch_sizes=[2]");
        Succeeds(run);
        Assert.True(File.Exists(Path("staged", "final", "model.safetensors")));
        var stages = Directory.GetDirectories(Path("staged", "stages")).Order().ToList();
        Assert.Equal(3, stages.Count);
        // 12, 12 and 24 steps (metrics every 4th step, and the last).
        Assert.Equal([12, 12, 24], stages.Select(stage =>
            JsonNode.Parse(File.ReadLines(System.IO.Path.Combine(stage, "metrics.jsonl")).Last())!["step"]!.GetValue<int>()));
        Assert.All(stages, stage => Assert.True(File.Exists(System.IO.Path.Combine(stage, "logs", "rank-1.jsonl"))));
        Assert.Equal(3, Regex.Matches(run.Output, @"\[rank 0\] .*Global batch: 2 rank\(s\) x data.batch_sizes \[2\] = \[4\]").Count);
    }

    static void CopyFolder(string from, string to)
    {
        foreach (string directory in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(directory.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(from, to));
    }
}
