using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Tests.Checkpoints;
using M3Train.Tests.Data;
using M3Train.Training;
using M3Train.Training.Losses;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

/// <summary>Teacher scores in the data are used only when <c>loss.knowledge_distillation</c> is on, as FlagEmbedding's switch.</summary>
[Collection(SerilogCaptureCollection.Name)]
public sealed class KnowledgeDistillationTests
{
    static TrainBatch ScoredBatch()
    {
        // nq.jsonl carries pos_scores/neg_scores in every row.
        using var data = DataTestFolder.Load(new DataConfig
        {
            Files = [TinyRun.Repo("data", "train", "nq.jsonl")],
            TrainGroupSize = 4, QueryMaxLen = 32, PassageMaxLen = 64, BinEdges = [], BatchSizes = [4], CacheTokenCounts = false,
        });
        using var loader = new TrainDataLoader(data, DataTestFolder.Tokenizer, seed: 1);
        return loader.Next();
    }

    static float Loss(TrainBatch batch, bool distil)
    {
        using var checkpoint = M3Checkpoint.Load(TinyRun.Repo("data", "models", "tiny-m3"));
        checkpoint.Model.train();
        var objective = new UnifiedFinetuneObjective(checkpoint.Model, DataParallelGroup.Alone(CPU),
            new M3BatchLoss(new LossConfig { KnowledgeDistillation = distil }, AllHeads), null, seed: 1);
        return objective.Step(batch, new StepContext(1, 0)).Loss.item<float>();
    }

    [Fact]
    public void ScoresInTheDataChangeTheLossOnlyWithTheSwitchOn()
    {
        var scored = ScoredBatch();
        Assert.NotNull(scored.TeacherScores);
        var unscored = scored with { TeacherScores = null };

        Assert.Equal(Loss(unscored, distil: false), Loss(scored, distil: false));
        Assert.NotEqual(Loss(scored, distil: false), Loss(scored, distil: true));
        Assert.Equal(Loss(unscored, distil: false), Loss(unscored, distil: true));
    }

    [Fact]
    public void TheLogSaysWhichDatasetsDistilAndWarnsOnceWhenScoresGoUnused()
    {
        List<string> Log(bool distil, out IReadOnlyList<string> warnings)
        {
            using var run = new TinyRun();
            var config = run.Config();
            using var log = new LogCapture();
            using (var setup = new TrainingSetup(config with { Loss = config.Loss with { KnowledgeDistillation = distil } }, new TrainerOptions()))
                UnifiedFinetuneRecipe.Objective(setup);
            warnings = log.Warnings;
            return log.Messages.ToList();
        }

        // TinyRun trains on nq.jsonl (scores in every row) and toy_train_data1.jsonl (none).
        Log(distil: false, out var off);
        var unused = Assert.Single(off, w => w.Contains("teacher scores"));
        Assert.Contains("nq.jsonl", unused);
        Assert.DoesNotContain("toy_train_data1.jsonl", unused);
        Assert.Contains("loss.knowledge_distillation", unused);

        var on = Log(distil: true, out var onWarnings);
        Assert.DoesNotContain(onWarnings, w => w.Contains("teacher scores"));
        var distilling = Assert.Single(on, m => m.StartsWith("Knowledge distillation", StringComparison.Ordinal));
        Assert.Contains("nq.jsonl", distilling);
        Assert.Contains("m3_kd_loss", distilling);
        Assert.Contains(on, m => m.Contains("hard labels") && m.Contains("toy_train_data1.jsonl"));
    }
}
