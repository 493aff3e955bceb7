using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Tests.Data;
using M3Train.Tests.Training;
using M3Train.Text;
using M3Train.Training;
using M3Train.Training.Losses;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;
using static TorchSharp.torch;

namespace M3Train.Tests.DataParallel;

/// <summary>Data-parallel training on CPU replicas (the same code path as several GPUs).</summary>
public class MultiReplicaTrainingTests
{
    const int G = 3;
    static readonly string ModelDir = TinyRun.Repo("data", "models", "tiny-m3");

    static TrainBatch Batch(XlmrTokenizer tok, int first, int count, bool noInBatch)
    {
        var queries = Enumerable.Range(first, count).Select(i => $"what is item {i} of the list about {i % 3}").ToList();
        var passages = Enumerable.Range(first, count).SelectMany(i => new[]
        {
            $"item {i} is about subject {i % 3} and more", $"noise text number {i * 11}", $"an unrelated sentence {i + 40}",
        }).ToList();
        return new TrainBatch(0, 0, 0, "test", 0, [], tok.EncodePadded(queries, 32), tok.EncodePadded(passages, 32),
            null, G, noInBatch, null, null);
    }

    static M3Model Load()
    {
        var c = M3Checkpoint.Load(ModelDir);
        c.Model.train();
        return c.Model;
    }

    static Dictionary<string, Tensor> Grads(M3Model m) =>
        m.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());

    static void AssertClose(Dictionary<string, Tensor> want, Dictionary<string, Tensor> got, double tolerance)
    {
        Assert.Equal(want.Keys.Order(), got.Keys.Order());
        foreach (var (k, v) in want)
        {
            double diff = (v - got[k]).abs().max().item<float>();
            Assert.True(diff <= tolerance, $"{k}: max |diff| {diff:E2}");
        }
    }

    static M3LossInput Input(M3Representations q, M3Representations p, CrossDeviceDenseScores? cross, bool inBatch, Tensor? dense = null)
    {
        Tensor Local(Tensor s) => inBatch ? s : NoInBatchNegativesLoss.LocalBlock(s, G);
        return new M3LossInput
        {
            GroupSize = G,
            InBatchNegatives = inBatch,
            DenseCrossDevice = cross,
            Dense = dense,
            Sparse = Local(M3Scores.Sparse(q, p)),
            Colbert = Local(M3Scores.Colbert(q, p)),
        };
    }

    [Theory]
    [InlineData(null)]
    [InlineData(2)]
    public void TwoReplicaUnifiedStepEqualsTheSpecFormulaComputedInOneProcess(int? subBatch)
    {
        var tok = XlmrTokenizer.FromFolder(ModelDir);
        var halves = new[] { Batch(tok, 0, 4, false), Batch(tok, 4, 4, false) };
        var lossConfig = new LossConfig { MaskDuplicateNegatives = false, SelfDistillStartStep = -1 };

        // The formula of docs/METHOD.md ("Cross-device negatives") by hand: gathered dense scores, local sparse and multi-vector scores, mean over replicas.
        var single = Load();
        var reps = halves.Select(b =>
        {
            var (qi, qm) = b.Queries.ToTensors(CPU);
            var (pi, pm) = b.Passages!.ToTensors(CPU);
            return (q: single.Encode(qi, qm), p: single.Encode(pi, pm));
        }).ToList();
        var allQ = cat(reps.Select(r => r.q.Dense).ToList(), 0);
        var allP = cat(reps.Select(r => r.p.Dense).ToList(), 0);
        var unified = new M3UnifiedLoss(lossConfig, AllHeads);
        var reference = stack(Enumerable.Range(0, 2).Select(r =>
            unified.Compute(Input(reps[r].q, reps[r].p, CrossDeviceDenseScores.FromGathered(allQ, allP, r, 2), true), 3).Loss).ToList()).mean();
        reference.backward();
        var want = Grads(single);

        var set = new ReplicaSet<M3Model>([Load(), Load()], [CPU, CPU]);
        var objective = new UnifiedFinetuneObjective(set, new M3BatchLoss(lossConfig, AllHeads), subBatch, seed: 1);
        var step = objective.Step(halves, new StepContext(1, MicroStep: 3));
        set.ReduceGradients();

        Assert.True(Math.Abs(reference.item<float>() - step.Loss.item<float>()) < 1e-5);
        AssertClose(want, Grads(set.Master), 1e-5);
    }

    [Fact]
    public void WithoutInBatchNegativesTheGradientIsTheMeanOfTheHalves()
    {
        var tok = XlmrTokenizer.FromFolder(ModelDir);
        var halves = new[] { Batch(tok, 0, 3, true), Batch(tok, 3, 3, true) };
        var lossConfig = new LossConfig { MaskDuplicateNegatives = false };
        var perHalf = new List<Dictionary<string, Tensor>>();
        foreach (var half in halves)
        {
            var m = Load();
            new UnifiedFinetuneObjective(new ReplicaSet<M3Model>([m], [CPU]), new M3BatchLoss(lossConfig, AllHeads), null, 1).Step([half], new StepContext(1, 3));
            perHalf.Add(Grads(m));
        }
        var mean = perHalf[0].ToDictionary(kv => kv.Key, kv => (kv.Value + perHalf[1][kv.Key]) / 2);

        var set = new ReplicaSet<M3Model>([Load(), Load()], [CPU, CPU]);
        new UnifiedFinetuneObjective(set, new M3BatchLoss(lossConfig, AllHeads), null, 1).Step(halves, new StepContext(1, 3));
        set.ReduceGradients();
        AssertClose(mean, Grads(set.Master), 1e-5);
    }

    [Fact]
    public void DenseOnlyContrastiveLossOfTwoHalvesEqualsOneFullReplica()
    {
        var tok = XlmrTokenizer.FromFolder(ModelDir);
        var full = Batch(tok, 0, 6, false);
        var halves = new[] { Batch(tok, 0, 3, false), Batch(tok, 3, 3, false) };
        var lossConfig = new LossConfig { MaskDuplicateNegatives = false };
        M3Head[] dense = [M3Head.Dense];
        foreach (int? subBatch in new int?[] { null, 2 })
        {
            var one = Load();
            var p1 = new UnifiedFinetuneObjective(new ReplicaSet<M3Model>([one], [CPU]), new M3BatchLoss(lossConfig, dense), subBatch, 1).Step([full], new StepContext(1, 0));
            var set = new ReplicaSet<M3Model>([Load(), Load()], [CPU, CPU]);
            var p2 = new UnifiedFinetuneObjective(set, new M3BatchLoss(lossConfig, dense), subBatch, 1).Step(halves, new StepContext(1, 0));
            set.ReduceGradients();
            Assert.True(Math.Abs(p1.Loss.item<float>() - p2.Loss.item<float>()) < 1e-5);
            AssertClose(Grads(one), Grads(set.Master), 1e-5);
        }
    }

    static RunConfig TwoReplicaConfig(TinyRun run, int steps, params string[] devices)
    {
        var c = run.Config(maxSteps: steps);
        return c with
        {
            Data = c.Data with { BatchSizes = [4 / devices.Length] },
            Train = c.Train with { Devices = [.. devices] },
        };
    }

    static List<double> Losses(string output) =>
        File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!["loss"]!.GetValue<double>()).ToList();

    [Fact]
    public void ReplicasStayBitIdentical()
    {
        using var run = new TinyRun();
        var config = TwoReplicaConfig(run, 4, "cpu", "cpu");
        using var setup = new TrainingSetup(config, new TrainerOptions());
        using var trainer = new Trainer(setup, UnifiedFinetuneRecipe.Objective(setup));
        trainer.Run();
        Assert.True(setup.Replicas.WeightsIdentical());
        Assert.False(setup.Replicas.Replicas[0].parameters().First().equal(Load().parameters().First()).all().item<bool>());
    }

    /// <summary>
    /// With the dense head alone every replica scores against the gathered global batch, so the loss of a step
    /// does not depend on how the batch is sliced: the resumed curve must continue the uninterrupted one. (With
    /// sparse and multi-vector heads the in-batch negatives of those heads are per replica, so the curve
    /// continues but not to the digit.)
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void ATwoReplicaRunResumesOnAnotherDeviceCount(int replicas)
    {
        RunConfig Dense(RunConfig c) => c with { Model = c.Model with { Heads = [M3Head.Dense] } };
        using var straight = new TinyRun();
        UnifiedFinetuneRecipe.Run(Dense(TwoReplicaConfig(straight, 6, "cpu", "cpu")));

        using var run = new TinyRun();
        var first = Dense(TwoReplicaConfig(run, 6, "cpu", "cpu"));
        UnifiedFinetuneRecipe.Run(first with { Train = first.Train with { StopAfter = 3 } });
        // The config of the new device count keeps the first run's per-replica sizes; the trainer rescales them.
        var resumed = first with { Train = first.Train with { Devices = Enumerable.Repeat("cpu", replicas).ToList() } };
        var result = UnifiedFinetuneRecipe.Run(resumed, new TrainerOptions { Resume = "latest" });
        Assert.Equal(6, result.Steps);

        var expected = Losses(straight.Output);
        var got = Losses(run.Output);
        Assert.Equal(expected.Count, got.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - got[i]) < 1e-4, $"step {i + 1}: {got[i]} vs {expected[i]} of the uninterrupted 2-replica run");
    }

    [Fact]
    public void AFailingReplicaEndsTheRunWithItsCauseAndKeepsTheLastCheckpoint()
    {
        using var run = new TinyRun();
        var config = TwoReplicaConfig(run, 8, "cpu", "cpu");
        config = config with { Train = config.Train with { SaveEvery = 2 } };
        var e = Assert.Throws<ReplicaFailedException>(() =>
            TinyRun.Finetune(config, (setup, objective) => new FailingReplicaObjective(objective, setup.Replicas, replica: 1, microStep: 4)));
        Assert.Equal(1, e.Replica);
        Assert.Contains("injected failure in replica 1", e.Message);

        var manager = new CheckpointManager(run.Output, 10);
        string latest = manager.Latest()!;
        Assert.Equal(4, TrainerState.Load(latest).Step);
        using var reloaded = M3Checkpoint.Load(latest);
        Assert.Empty(Directory.EnumerateDirectories(manager.Root, ".*"));
        var resumed = UnifiedFinetuneRecipe.Run(config, new TrainerOptions { Resume = "latest" });
        Assert.Equal(8, resumed.Steps);
    }
}
