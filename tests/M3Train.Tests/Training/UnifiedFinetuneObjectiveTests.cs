using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Tests.Data;
using M3Train.Training;
using M3Train.Training.Losses;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

public class UnifiedFinetuneObjectiveTests
{
    /// <summary>
    /// Two queries with two passages each, the first query's negative equal to the second query's positive: one in-batch
    /// column of the second row (the first query's negative) is a false negative.
    /// </summary>
    static TrainBatch Batch(string tag)
    {
        string[] queries = [$"what is {tag} alpha", $"what is {tag} beta"];
        string[] passages = [$"{tag} alpha is a letter", $"{tag} beta is a letter", $"{tag} beta is a letter", $"{tag} gamma is another"];
        var tokenizer = DataTestFolder.Tokenizer;
        return new TrainBatch(0, 0, 0, "duplicates", 0, [0, 1], tokenizer.EncodePadded(queries, 32), tokenizer.EncodePadded(passages, 32),
            null, 2, false, null, null,
            passages.Select(TextHash.Of).ToArray(), [[TextHash.Of(passages[0])], [TextHash.Of(passages[2])]]);
    }

    static (ObjectiveStep Step, M3Checkpoint[] Loaded) Run(bool mask)
    {
        var loaded = new[] { M3Checkpoint.Load(TinyRun.Repo("data", "models", "tiny-m3")), M3Checkpoint.Load(TinyRun.Repo("data", "models", "tiny-m3")) };
        foreach (var c in loaded) c.Model.train();
        var replicas = new ReplicaSet<M3Model>([loaded[0].Model, loaded[1].Model], [CPU, CPU]);
        var objective = new UnifiedFinetuneObjective(replicas, new M3BatchLoss(new LossConfig { MaskDuplicateNegatives = mask }, AllHeads), null, seed: 1);
        return (objective.Step([Batch("x"), Batch("y")], new StepContext(1, 0)), loaded);
    }

    [Fact]
    public void MaskedNegativesAreCountedOnceForTheGlobalBatchAndOnlyTheSettingDecidesWhetherTheLossSkipsThem()
    {
        var (masked, a) = Run(mask: true);
        var (unmasked, b) = Run(mask: false);
        try
        {
            // One false negative per replica's slice (row 1, column 1), counted once over the gathered batch of both.
            Assert.Equal(2, masked.Figures["masked_negatives"]);
            Assert.Equal(2, unmasked.Figures["masked_negatives"]);
            Assert.NotEqual(masked.Loss.item<float>(), unmasked.Loss.item<float>());
            Assert.Contains("loss_dense", masked.Means.Keys);
            Assert.DoesNotContain("sparse_zero_share", masked.Figures.Keys);
        }
        finally
        {
            foreach (var c in a.Concat(b)) c.Dispose();
        }
    }

    [Fact]
    public void AMeasuredStepReportsTheHealthOfEveryTextItEncoded()
    {
        using var checkpoint = M3Checkpoint.Load(TinyRun.Repo("data", "models", "tiny-m3"));
        checkpoint.Model.train();
        var objective = new UnifiedFinetuneObjective(new ReplicaSet<M3Model>([checkpoint.Model], [CPU]),
            new M3BatchLoss(new LossConfig(), AllHeads), subBatchSize: 3, seed: 1, alarm: new SparseCollapseAlarm(0.0, 1));
        var step = objective.Step([Batch("x")], new StepContext(7, 0, Measure: true));
        Assert.InRange(step.Figures["sparse_active_per_text"], 1, 32);
        Assert.InRange(step.Figures["colbert_self_similarity"], 0, 1);
        // A threshold of 0 is always reached: the alarm goes off on the first measured step.
        Assert.StartsWith("sparse all-zero", step.Alarm);
    }
}
