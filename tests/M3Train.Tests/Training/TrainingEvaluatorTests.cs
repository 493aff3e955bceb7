using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Eval;
using M3Train.Tests.Checkpoints;
using M3Train.Tests.Data;
using M3Train.Training;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

/// <summary>train.eval and train.save_best on the shipped BEIR sample. Reads the run's log.jsonl, so it runs alone.</summary>
[Collection(SerilogCaptureCollection.Name)]
public class TrainingEvaluatorTests
{
    static readonly string Beir = TinyRun.Repo("data", "beir-sample");

    static RunConfig Config(TinyRun run, int maxSteps) => run.Config(maxSteps) with
    {
        Model = new ModelSection { Path = TinyRun.Repo("data", "models", "tiny-m3-pretrained") },
        Train = run.Config(maxSteps).Train with
        {
            SaveEvery = 3,
            Eval = new TrainEvalConfig { Beir = Beir, Every = 3, Modes = ["dense", "sparse"], MaxQueryLength = 64, MaxPassageLength = 128 },
            SaveBest = new SaveBestConfig { Metric = "eval_dense_ndcg@10" },
        },
    };

    [Fact]
    public void EvaluationsGoToMetricsTheBestModelIsKeptAndTheSummaryNamesBoth()
    {
        using var run = new TinyRun();
        var config = Config(run, maxSteps: 6);
        var result = UnifiedFinetuneRecipe.Run(config);
        Assert.Equal(6, result.Steps);

        var evaluations = FinetuneRecipeTests.Metrics(run.Output).Where(m => m["eval_dense_ndcg@10"] is not null).ToList();
        Assert.Equal([3, 6], evaluations.Select(m => m["step"]!.GetValue<int>()));
        foreach (var e in evaluations)
            foreach (string name in TrainingEvaluator.FigureNames(config.Train.Eval))
                Assert.InRange(e[name]!.GetValue<double>(), 0, 1);
        Assert.Equal(6, TrainingEvaluator.FigureNames(config.Train.Eval).Count);

        // The last evaluation is of the final weights: m3train eval's evaluator on OUTPUT/final gives the same figures.
        using (var final = TorchM3Inference.Load(result.FinalModel!, CPU, 64))
        {
            var data = BeirDataset.Load(Path.Combine(Beir, "corpus.jsonl"), Path.Combine(Beir, "queries.jsonl"), Path.Combine(Beir, "qrels.tsv"));
            var again = new RetrievalEvaluator(final, CPU).Evaluate(data,
                new RetrievalEvalOptions { Modes = [RetrievalMode.Dense, RetrievalMode.Sparse], MaxQueryLength = 64, MaxPassageLength = 128 }, null);
            Assert.Equal(again.Modes[0].Report.NdcgAt10, evaluations[1]["eval_dense_ndcg@10"]!.GetValue<double>(), 9);
            Assert.Equal(again.Modes[1].Report.RecallAt100, evaluations[1]["eval_sparse_recall@100"]!.GetValue<double>(), 9);
        }

        // OUTPUT/best holds the model of the better evaluation (the first on a tie), loadable as any checkpoint.
        var scores = evaluations.Select(m => m["eval_dense_ndcg@10"]!.GetValue<double>()).ToList();
        int bestStep = scores[1] > scores[0] ? 6 : 3;
        string best = Path.Combine(run.Output, "best");
        var marker = JsonNode.Parse(File.ReadAllText(Path.Combine(best, TrainingEvaluator.BestFile)))!;
        Assert.Equal(bestStep, marker["step"]!.GetValue<int>());
        Assert.Equal(scores.Max(), marker["value"]!.GetValue<double>());
        using (M3Checkpoint.Load(best)) { }
        Assert.DoesNotContain(Directory.GetDirectories(run.Output), d => Path.GetFileName(d).StartsWith("best.", StringComparison.Ordinal));

        string done = File.ReadAllLines(Path.Combine(run.Output, "log.jsonl")).Single(l => l.Contains("Done: "));
        Assert.Contains("nDCG@10 at step 6: dense ", done);
        Assert.Contains($"Best eval_dense_ndcg@10 {scores.Max():F4} at step {bestStep}", done);
        Assert.Contains("eval_dense_ndcg@10", File.ReadAllText(Path.Combine(result.FinalModel!, "README.md")));
    }

    [Fact]
    public void AResumedRunKeepsTheBestOfBeforeTheInterruption()
    {
        using var run = new TinyRun();
        var config = Config(run, maxSteps: 6);
        config = config with { Train = config.Train with { StopAfter = 3 } };
        UnifiedFinetuneRecipe.Run(config);
        string marker = Path.Combine(run.Output, "best", TrainingEvaluator.BestFile);
        var before = JsonNode.Parse(File.ReadAllText(marker))!;
        Assert.Equal(3, before["step"]!.GetValue<int>());

        // The resumed run knows step 3's figure: step 6 replaces the best model only if it beats it.
        UnifiedFinetuneRecipe.Run(config with { Train = config.Train with { StopAfter = null } }, new TrainerOptions { Resume = "latest" });
        var after = JsonNode.Parse(File.ReadAllText(marker))!;
        var six = FinetuneRecipeTests.Metrics(run.Output).Single(m => m["step"]!.GetValue<int>() == 6 && m["eval_dense_ndcg@10"] is not null);
        double atSix = six["eval_dense_ndcg@10"]!.GetValue<double>(), atThree = before["value"]!.GetValue<double>();
        Assert.Equal(atSix > atThree ? 6 : 3, after["step"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("train.eval.beir=data/beir-sample", "train.eval.corpus=c.jsonl", "'train.eval.beir': give a BEIR folder or the three files")]
    [InlineData("train.eval.corpus=c.jsonl", "train.eval.queries=q.jsonl", "'train.eval.qrels': corpus, queries and qrels go together")]
    [InlineData("train.eval.beir=data/beir-sample", "train.eval.modes=[dense,bm25]", "unknown mode 'bm25'")]
    [InlineData("train.save_best.metric=eval_dense_ndcg@10", "train.seed=1", "set train.eval.beir (or its three files) too")]
    [InlineData("train.eval.beir=data/beir-sample", "train.save_best.metric=eval_colbert_ndcg@10", "eval_colbert_ndcg@10' is not a figure train.eval writes")]
    [InlineData("train.eval.beir=data/beir-sample", "train.save_best.metric=loss", "'loss' is not an evaluation figure")]
    public void BadEvaluationSettingsFailWhenTheConfigIsRead(string first, string second, string message)
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("run.yaml", "train:\n  eval:\n    modes: [dense, sparse]\n");
        var e = Assert.ThrowsAny<M3TrainException>(() => RunConfig.Load(path, [first, second]));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void AMissingBeirFolderFailsBeforeTraining()
    {
        using var run = new TinyRun();
        var config = Config(run, maxSteps: 2);
        config = config with { Train = config.Train with { Eval = config.Train.Eval with { Beir = Path.Combine(run.Output, "nowhere") } } };
        var e = Assert.Throws<M3TrainException>(() => UnifiedFinetuneRecipe.Run(config));
        Assert.Contains("train.eval.beir:", e.Message);
        Assert.False(File.Exists(Path.Combine(run.Output, "metrics.jsonl")));
    }
}
