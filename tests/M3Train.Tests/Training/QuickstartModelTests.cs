using System.Text.Json.Nodes;
using M3Train.Eval;
using M3Train.Text;
using M3Train.Tests.Eval;
using M3Train.Training;
using M3Train.Training.Pretraining;
using Xunit;

namespace M3Train.Tests.Training;

/// <summary>
/// The quickstart's model, <c>data/models/tiny-m3-pretrained</c> (tiny-m3 after <c>scripts/make-quickstart-model.sh</c>):
/// its dense vectors tell texts apart, which tiny-m3's do not, and all three heads learn when the quickstart fine-tunes it.
/// </summary>
public class QuickstartModelTests(ITestOutputHelper output)
{
    static readonly string Quickstart = TinyRun.Repo("configs", "quickstart.yaml");

    [Fact]
    public void TheScriptsTwoPretrainingStagesChainThroughTheirConfigs()
    {
        var retromae = RunConfig.Load(TinyRun.Repo("configs", "quickstart-model-retromae.yaml"));
        var contrastive = RunConfig.Load(TinyRun.Repo("configs", "quickstart-model-contrastive.yaml"));
        Assert.Equal(PretrainObjective.Retromae, PretrainRecipe.Prepare(retromae).Pretrain.Objective);
        Assert.Equal(PretrainObjective.Contrastive, PretrainRecipe.Prepare(contrastive).Pretrain.Objective);
        Assert.Equal(retromae.OutputDir + "/final", contrastive.Model.Path);
        // The script writes the first stage's input and reads the last stage's output where the configs say.
        string script = File.ReadAllText(TinyRun.Repo("scripts", "make-quickstart-model.sh"));
        Assert.Contains($"\nwork={Path.GetDirectoryName(retromae.Model.Path)}\n", script);
        Assert.Contains($"--output \"$work/{Path.GetFileName(retromae.Model.Path)}\"", script);
        Assert.Contains($"cp -r \"$work/{Path.GetFileName(contrastive.OutputDir)}/final\"", script);
        Assert.StartsWith(Path.GetDirectoryName(retromae.Model.Path) + "/", contrastive.OutputDir);
    }

    /// <summary>Mean dense score of the nq sample's queries with their positive and with their first three negatives.</summary>
    (double Positive, double Negative) DenseScores(string modelDir)
    {
        var rows = TrainingRowFile.Read(TinyInference.TrainFile("nq.jsonl"));
        using var inference = TorchM3Inference.Load(modelDir, TorchSharp.torch.CPU, 16);
        var queries = inference.Encode(rows.Select(r => r.Query).ToArray(), 64, EncodingParts.Dense);
        var passages = rows.SelectMany(r => r.Row.Positives.Take(1).Concat(r.Row.Negatives.Take(3))).ToArray();
        var encoded = inference.Encode(passages, 128, EncodingParts.Dense);
        double positive = Enumerable.Range(0, rows.Count).Average(r => queries.DenseDot(r, encoded, 4 * r));
        double negative = Enumerable.Range(0, rows.Count).SelectMany(r => Enumerable.Range(1, 3).Select(n => queries.DenseDot(r, encoded, 4 * r + n))).Average();
        output.WriteLine($"{modelDir}: dense positives {positive:F4}, negatives {negative:F4}");
        return (positive, negative);
    }

    [Fact]
    public void ThePretrainedModelsDenseVectorsSeparateTextsWhereTinyM3sAreAllAlike()
    {
        var (tinyPositive, tinyNegative) = DenseScores(TinyInference.ModelDir);
        Assert.True(tinyNegative > 0.999 && tinyPositive > 0.999, "tiny-m3's CLS vectors were expected to be collapsed");
        string model = TinyRun.Repo(RunConfig.Load(Quickstart).Model.Path);
        Assert.EndsWith("tiny-m3-pretrained", model);
        var (positive, negative) = DenseScores(model);
        Assert.True(positive - negative > 0.2, $"positives {positive:F4}, negatives {negative:F4}");
    }

    /// <summary>The quickstart's first <paramref name="steps"/> steps on <paramref name="modelPath"/>, every step logged.</summary>
    static List<JsonNode> Finetune(string modelPath, int steps)
    {
        using var run = new TinyRun();
        var quick = RunConfig.Load(Quickstart);
        UnifiedFinetuneRecipe.Run(quick with
        {
            OutputDir = run.Output,
            Model = quick.Model with { Path = TinyRun.Repo(modelPath) },
            Data = quick.Data with { Files = quick.Data.Files.Select(f => TinyRun.Repo(f)).ToList(), CacheTokenCounts = false },
            Train = quick.Train with { MaxSteps = steps, LogEvery = 1, SaveEvery = 0, Tensorboard = false },
        });
        return FinetuneRecipeTests.Metrics(run.Output);
    }

    [Fact]
    public void AllThreeHeadsLearnWhenTheQuickstartFineTunesIt()
    {
        const int Steps = 48;
        var metrics = Finetune(RunConfig.Load(Quickstart).Model.Path, Steps);
        // The same batches (same seed and data) on tiny-m3, whose dense scores are all 1.0: its loss_dense is ln k of
        // each batch (k its passages, 16 with in-batch negatives, 4 without), what a dense head that learns nothing gets.
        var collapsed = Finetune(Path.Combine("data", "models", "tiny-m3"), Steps);
        Assert.All(collapsed, m => Assert.Equal(m["dense_pos"]!.GetValue<double>(), m["dense_neg"]!.GetValue<double>(), 1e-3));

        double Value(JsonNode m, string key) => m[key]!.GetValue<double>();
        double Mean(IEnumerable<JsonNode> part, string key) => part.Average(m => Value(m, key));
        var firstHalf = metrics.Take(Steps / 2).ToList();
        var lastHalf = metrics.Skip(Steps / 2).ToList();
        double lnK = Mean(collapsed.Skip(Steps / 2), "loss_dense");
        foreach (string key in new[] { "loss_dense", "loss_sparse", "loss_colbert", "dense_pos", "dense_neg" })
            output.WriteLine($"{key}: first half {Mean(firstHalf, key):F4}, last half {Mean(lastHalf, key):F4}");
        output.WriteLine($"ln k over the last half: {lnK:F4}");

        double gap = Mean(metrics, "dense_pos") - Mean(metrics, "dense_neg");
        Assert.True(gap > 0.15, $"dense_pos - dense_neg averages {gap:F4}");
        Assert.True(Mean(lastHalf, "loss_dense") < 0.7 * lnK, $"loss_dense {Mean(lastHalf, "loss_dense"):F4} against ln k {lnK:F4}");
        foreach (string head in new[] { "loss_sparse", "loss_colbert" })
            Assert.True(Mean(lastHalf, head) < Mean(firstHalf, head), head);
    }
}
