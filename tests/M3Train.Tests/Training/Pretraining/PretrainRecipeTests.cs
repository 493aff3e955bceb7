using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Config;
using M3Train.Tests.Data;
using M3Train.Training;
using M3Train.Training.Losses;
using M3Train.Training.Pretraining;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Pretraining;

/// <summary>Runs alone: a masked-LM head the tiny model lacks is initialized from torch's global generator.</summary>
[Collection(GlobalRandomCollection.Name)]
public sealed class PretrainRecipeTests(ITestOutputHelper output)
{
    static List<JsonNode> Metrics(string run) =>
        File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();

    static double[] Series(string run, string key) => Metrics(run).Select(m => m[key]!.GetValue<double>()).ToArray();

    static Dictionary<string, Tensor> Tensors(string file) =>
        SafetensorsFile.Read(file).ToDictionary(kv => kv.Key, kv => kv.Value);

    static void AssertBitIdentical(string fileA, string fileB)
    {
        var a = Tensors(fileA);
        var b = Tensors(fileB);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, v) in a)
            Assert.True(v.equal(b[k]).all().item<bool>(), $"{Path.GetFileName(fileA)}: {k} differs");
    }

    [Fact]
    public void RetroMaeLossesFallAndTheRunSavesEncoderLmHeadAndDecoder()
    {
        using var run = new PretrainRun();
        var result = PretrainRecipe.Run(run.Config(PretrainObjective.Retromae, maxSteps: 14));

        var mlm = Series(run.Output, "loss_mlm");
        var decoder = Series(run.Output, "loss_decoder");
        output.WriteLine($"loss_mlm {string.Join(" ", mlm.Select(x => x.ToString("F3")))}");
        output.WriteLine($"loss_decoder {string.Join(" ", decoder.Select(x => x.ToString("F3")))}");
        Assert.Equal(mlm.Zip(decoder, (m, d) => m + d), Series(run.Output, "loss"), (x, y) => Math.Abs(x - y) < 1e-5);
        Assert.True(mlm[^3..].Average() < mlm[..3].Average() - 0.5, "encoder MLM loss did not fall");
        Assert.True(decoder[^3..].Average() < decoder[..3].Average() - 0.5, "decoder loss did not fall");

        string final = result.FinalModel!;
        using var checkpoint = M3Checkpoint.Load(final);
        Assert.NotNull(checkpoint.Model.LmHead);
        Assert.True(File.Exists(Path.Combine(final, RetroMaeDecoder.FileName)));
        using var decoderModel = new RetroMaeDecoder(checkpoint.Config, checkpoint.Model.Backbone.Embeddings);
        decoderModel.Load(Path.Combine(final, RetroMaeDecoder.FileName));
        // Pretraining keeps the sparse and multi-vector heads as they were.
        using var start = M3Checkpoint.Load(TinyRun.Repo("data", "models", "tiny-m3"));
        Assert.True(start.Model.SparseHead.parameters().Zip(checkpoint.Model.SparseHead.parameters()).All(p => p.First.equal(p.Second).all().item<bool>()));
    }

    [Fact]
    public void ARetroMaeStepMovesTheEncodersExtendedPositionRows()
    {
        // extend-positions then pretrain, as BGE-M3 grew XLM-R from 514 to 8194 positions: texts of about 240 tokens
        // reach rows the tiny model's 130-row table did not have.
        using var folder = new DataTestFolder();
        string extended = Path.Combine(folder.Path, "tiny-258");
        PositionExtension.Extend(TinyRun.Repo("data", "models", "tiny-m3"), extended, 258, PositionExtensionMethod.Copy);
        var words = File.ReadLines(TinyRun.Repo("data", "pretrain", "texts.jsonl")).Take(400)
            .SelectMany(l => JsonNode.Parse(l)!["text"]!.GetValue<string>().Split(' ')).ToArray();
        string texts = folder.Write("long.jsonl", string.Join("\n", Enumerable.Range(0, 8)
            .Select(i => new JsonObject { ["text"] = string.Join(' ', words.Skip(i * 200).Take(200)) }.ToJsonString())));

        using var run = new PretrainRun();
        var config = run.Config(PretrainObjective.Retromae, maxSteps: 1);
        var result = PretrainRecipe.Run(config with
        {
            Model = config.Model with { Path = extended },
            Data = config.Data with { Files = [texts], PassageMaxLen = 256 },
        });

        const string table = "embeddings.position_embeddings.weight";
        var before = Tensors(Path.Combine(extended, "model.safetensors"))[table];
        var after = Tensors(Path.Combine(result.FinalModel!, "model.safetensors"))[table];
        Assert.Equal(258, after.shape[0]);
        using var moved = (after[130..250] - before[130..250]).abs().sum(1);                      // [120]
        Assert.True(moved.gt(0).all().item<bool>(), "a position row beyond the original table did not move");
    }

    [Fact]
    public void ChunkingTheLmLossesChangesNeitherTheLossesNorTheWeights()
    {
        void Run(PretrainRun run, int chunk)
        {
            var config = run.Config(PretrainObjective.Retromae, maxSteps: 4);
            PretrainRecipe.Run(config with { Pretrain = config.Pretrain with { LmLossChunk = chunk } });
        }
        using var onePass = new PretrainRun();
        using var chunked = new PretrainRun();
        Run(onePass, 0);
        Run(chunked, 5);   // a few of the 4-text sub-batch's ~40 masked and ~150 decoder tokens per chunk

        foreach (string key in new[] { "loss_mlm", "loss_decoder" })
            Assert.Equal(Series(onePass.Output, key), Series(chunked.Output, key), (x, y) => Math.Abs(x - y) <= 1e-5 * Math.Abs(x));
        // Encoder, LM head and decoder: equal within float noise, and not bit-identical, which shows the chunked
        // run summed its gradients in another order (the setting reached the loss).
        var differences = new List<double>();
        foreach (string file in new[] { "model.safetensors", RetroMaeDecoder.FileName })
        {
            var a = Tensors(Path.Combine(onePass.Output, "final", file));
            var b = Tensors(Path.Combine(chunked.Output, "final", file));
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            differences.Add(a.Max(kv => (double)(kv.Value - b[kv.Key]).abs().max().item<float>()));
        }
        output.WriteLine($"largest weight difference after 4 steps: encoder and LM head {differences[0]:E2}, decoder {differences[1]:E2}");
        Assert.All(differences, d => Assert.True(d < 1e-5, $"weights differ by up to {d}"));
        Assert.True(differences.Max() > 0, "the chunked run is bit-identical to the one-pass run: lm_loss_chunk did not reach the loss");
    }

    [Fact]
    public void ContrastiveLossFalls()
    {
        // 16 of the shipped pairs, so each epoch is the same two batches of 8. The tiny random model starts with
        // nearly equal CLS states for every text (cosine 0.9999), so the loss starts at ln 8 until they separate.
        using var folder = new DataTestFolder();
        string pairs = folder.Write("pairs.jsonl", string.Join("\n", File.ReadLines(TinyRun.Repo("data", "pretrain", "pairs.jsonl")).Skip(60).Take(16)));
        using var run = new PretrainRun();
        var config = run.Config(PretrainObjective.Contrastive, maxSteps: 16);
        PretrainRecipe.Run(config with
        {
            Data = config.Data with { Files = [pairs] },
            Train = config.Train with { Lr = 1e-2 },
            Loss = config.Loss with { Temperature = 0.05 },
        });
        var loss = Series(run.Output, "loss");
        output.WriteLine($"loss {string.Join(" ", loss.Select(x => x.ToString("F3")))}");
        Assert.True(loss[^3..].Average() < loss[..3].Average() - 0.3, "contrastive loss did not fall");
    }

    [Theory]
    [InlineData(PretrainObjective.Retromae)]
    [InlineData(PretrainObjective.Contrastive)]
    public void ResumingFromACheckpointIsExact(PretrainObjective objective)
    {
        using var straight = new PretrainRun();
        PretrainRecipe.Run(straight.Config(objective, maxSteps: 6));

        using var sliced = new PretrainRun();
        var config = sliced.Config(objective, maxSteps: 6);
        var first = PretrainRecipe.Run(config with { Train = config.Train with { StopAfter = 3 } });
        Assert.Equal(3, first.Steps);
        var second = PretrainRecipe.Run(config, new TrainerOptions { Resume = "latest" });
        Assert.Equal(6, second.Steps);

        Assert.Equal(Series(straight.Output, "loss"), Series(sliced.Output, "loss"));
        string a = Path.Combine(straight.Output, "final"), b = Path.Combine(sliced.Output, "final");
        AssertBitIdentical(Path.Combine(a, "model.safetensors"), Path.Combine(b, "model.safetensors"));
        if (objective == PretrainObjective.Retromae)
            AssertBitIdentical(Path.Combine(a, RetroMaeDecoder.FileName), Path.Combine(b, RetroMaeDecoder.FileName));
    }

    [Fact]
    public void ContrastiveNeedsSubBatchesAndPairs()
    {
        using var run = new PretrainRun();
        var config = run.Config(PretrainObjective.Contrastive);
        var noSubBatch = Assert.Throws<M3TrainException>(() => PretrainRecipe.Prepare(config with { Train = config.Train with { SubBatchSize = null } }));
        Assert.Contains("train.sub_batch_size", noSubBatch.Message);
        var groups = Assert.Throws<M3TrainException>(() => PretrainRecipe.Prepare(config with { Data = config.Data with { TrainGroupSize = 4 } }));
        Assert.Contains("data.train_group_size", groups.Message);
        Assert.Equal([M3Head.Dense], PretrainRecipe.Prepare(config).Model.Heads);
    }

    [Fact]
    public void QuickstartConfigLoadsForBothStages()
    {
        string path = TinyRun.Repo("configs", "quickstart-pretrain.yaml");
        var retromae = RunConfig.Load(path);
        Assert.Equal(PretrainObjective.Retromae, retromae.Pretrain.Objective);
        PretrainRecipe.Prepare(retromae);
        // The second command of the file's header.
        var contrastive = RunConfig.Load(path, ["pretrain.objective=contrastive", "model.path=runs/quickstart-pretrain/retromae/final",
            "output_dir=runs/quickstart-pretrain/contrastive", "data.files=[data/pretrain/pairs.jsonl]"]);
        Assert.Equal(PretrainObjective.Contrastive, contrastive.Pretrain.Objective);
        Assert.Equal(["data/pretrain/pairs.jsonl"], contrastive.Data.Files);
        PretrainRecipe.Prepare(contrastive);
        Assert.Throws<ConfigException>(() => RunConfig.Load(path, ["pretrain.decoder_ratio=0.4"]));
    }

    [Fact]
    public void WithoutTheFullScaleConfigEachObjectiveRunsWithItsOwnDefaultsNotFineTuningsOnes()
    {
        using var folder = new DataTestFolder();
        string Config(string objective, string extra = "") => folder.Write($"{objective}-{Guid.NewGuid():N}.yaml",
            $"model: {{path: m}}\ndata: {{files: [t.jsonl]}}\npretrain: {{objective: {objective}}}\n{extra}");

        var retromae = PretrainRecipe.LoadConfig(Config("retromae"));
        Assert.Equal((7e-5, 0.1, 0.01, 8192), (retromae.Train.Lr, retromae.Train.WarmupRatio, retromae.Train.WeightDecay, retromae.Data.PassageMaxLen));
        var contrastive = PretrainRecipe.LoadConfig(Config("contrastive"));
        Assert.Equal((5e-5, 0.1, 0.01, 1), (contrastive.Train.Lr, contrastive.Train.WarmupRatio, contrastive.Train.WeightDecay, contrastive.Data.TrainGroupSize));
        Assert.Equal((512, 8192), (contrastive.Data.QueryMaxLen, contrastive.Data.PassageMaxLen));
        Assert.Equal(PretrainConfig.UnsupervisedBatchSizes, contrastive.Data.BatchSizes);
        // The same file read as a fine-tuning config keeps the fine-tuning defaults.
        Assert.Equal((1e-5, 0.0), (RunConfig.Load(Config("retromae")).Train.Lr, RunConfig.Load(Config("retromae")).Train.WeightDecay));

        // What the file or --set says wins, a default included; the objective may itself come from --set.
        var set = PretrainRecipe.LoadConfig(Config("retromae", "train: {lr: 1.0e-4}"), ["train.weight_decay=0", "pretrain.objective=contrastive"]);
        Assert.Equal((1e-4, 0.0, 1), (set.Train.Lr, set.Train.WeightDecay, set.Data.TrainGroupSize));
    }

    [Theory]
    [InlineData("bge-m3-retromae.yaml", PretrainObjective.Retromae)]
    [InlineData("bge-m3-pretrain-contrastive.yaml", PretrainObjective.Contrastive)]
    public void ReferenceConfigsLoad(string file, PretrainObjective objective)
    {
        var config = PretrainRecipe.Prepare(RunConfig.Load(TinyRun.Repo("configs", file)));
        Assert.Equal(objective, config.Pretrain.Objective);
        if (objective == PretrainObjective.Contrastive)
            Assert.Equal(PretrainConfig.UnsupervisedBatchSizes, config.Data.BatchSizes);
    }
}
