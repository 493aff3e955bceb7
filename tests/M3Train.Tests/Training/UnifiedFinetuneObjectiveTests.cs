using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Tests.DataParallel;
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

    static ThreadRanks.RankStep[] Run(bool mask) => ThreadRanks.Step(2,
        (model, group) => new UnifiedFinetuneObjective(model, group, new M3BatchLoss(new LossConfig { MaskDuplicateNegatives = mask }, AllHeads), null, seed: 1),
        rank => Batch(rank == 0 ? "x" : "y"), microStep: 0);

    [Fact]
    public void MaskedNegativesAreCountedPerRankOverTheGlobalBatchAndOnlyTheSettingDecidesWhetherTheLossSkipsThem()
    {
        var masked = Run(mask: true);
        var unmasked = Run(mask: false);
        // One false negative in each rank's slice (its row 1, column 1), found in the global batch's mask, counted by the rank that owns the row.
        Assert.All(masked, r => Assert.Equal(1, r.Step.Figures["masked_negatives"]));
        Assert.All(unmasked, r => Assert.Equal(1, r.Step.Figures["masked_negatives"]));
        Assert.NotEqual(masked[0].Loss, unmasked[0].Loss);
        Assert.Contains("loss_dense", masked[0].Step.Means.Keys);
        Assert.DoesNotContain("sparse_zero_share", masked[0].Step.Figures.Keys);
    }

    [Fact]
    public void AMeasuredStepReportsTheHealthOfEveryTextItEncoded()
    {
        using var checkpoint = M3Checkpoint.Load(TinyRun.Repo("data", "models", "tiny-m3"));
        checkpoint.Model.train();
        var objective = new UnifiedFinetuneObjective(checkpoint.Model, DataParallelGroup.Alone(CPU),
            new M3BatchLoss(new LossConfig(), AllHeads), subBatchSize: 3, seed: 1, alarm: new SparseCollapseAlarm(0.0, 1));
        var step = objective.Step(Batch("x"), new StepContext(7, 0, Measure: true));
        Assert.InRange(step.Figures["sparse_active_per_text"], 1, 32);
        Assert.InRange(step.Figures["colbert_self_similarity"], 0, 1);
        // A threshold of 0 is always reached: the alarm goes off on the first measured step.
        Assert.StartsWith("sparse all-zero", step.Alarm);
    }
}
