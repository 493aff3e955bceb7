using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Model;
using M3Train.Tests.Data;
using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Export;

/// <summary>
/// What a saved model folder gives other libraries: sentence-transformers' module files (checked against the field
/// names and values sentence-transformers reads: modules.json's idx/name/path/type, the Pooling module's
/// constructor arguments, the Transformer module's max_seq_length/do_lower_case), a model card, and a
/// tokenizer_config.json that transformers 4.x and 5.x both load.
/// </summary>
public sealed class SentenceTransformersFilesTests : IDisposable
{
    /// <summary>sentence-transformers' Pooling.config_keys: the arguments its loader passes to Pooling(**config).</summary>
    static readonly string[] PoolingKeys =
    [
        "word_embedding_dimension", "pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken", "include_prompt",
    ];

    readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    static JsonNode Json(string path) => JsonNode.Parse(File.ReadAllText(path))!;

    static void AssertSentenceTransformersFiles(string folder, int hidden, int maxSeqLength)
    {
        var modules = Json(Path.Combine(folder, "modules.json")).AsArray();
        Assert.Equal(3, modules.Count);
        string[] types = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling", "sentence_transformers.models.Normalize"];
        string[] paths = ["", "1_Pooling", "2_Normalize"];
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(["idx", "name", "path", "type"], modules[i]!.AsObject().Select(kv => kv.Key));
            Assert.Equal(i, modules[i]!["idx"]!.GetValue<int>());
            Assert.Equal(i.ToString(), modules[i]!["name"]!.GetValue<string>());
            Assert.Equal(paths[i], modules[i]!["path"]!.GetValue<string>());
            Assert.Equal(types[i], modules[i]!["type"]!.GetValue<string>());
        }

        var pooling = Json(Path.Combine(folder, "1_Pooling", "config.json")).AsObject();
        Assert.Equal(PoolingKeys, pooling.Select(kv => kv.Key));
        Assert.Equal(hidden, pooling["word_embedding_dimension"]!.GetValue<int>());
        Assert.True(pooling["pooling_mode_cls_token"]!.GetValue<bool>());
        Assert.All(PoolingKeys.Where(k => k.StartsWith("pooling_mode_", StringComparison.Ordinal) && k != "pooling_mode_cls_token"),
            k => Assert.False(pooling[k]!.GetValue<bool>(), k));

        var transformer = Json(Path.Combine(folder, "sentence_bert_config.json")).AsObject();
        Assert.Equal(maxSeqLength, transformer["max_seq_length"]!.GetValue<int>());
        Assert.False(transformer["do_lower_case"]!.GetValue<bool>());
        Assert.Equal("cosine", Json(Path.Combine(folder, "config_sentence_transformers.json"))["similarity_fn_name"]!.GetValue<string>());
    }

    [Fact]
    public void ASavedModelLoadsInSentenceTransformersAsTheDenseModel()
    {
        using var model = new M3Model(XlmRobertaConfig.Tiny());
        string saved = _temp.Sub("model");
        M3CheckpointWriter.Save(model, saved);
        AssertSentenceTransformersFiles(saved, model.Config.HiddenSize, model.Config.MaxPositionEmbeddings - 2);
    }

    [Fact]
    public void TheModelCardTellsBaseModelDataStepsAndEvaluationFromTheRun()
    {
        string run = _temp.Sub("run");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "config.yaml"), "output_dir: run\nmodel:\n  path: data/models/tiny-m3\ndata:\n  files: [data/train/a.jsonl, data/train/b.jsonl]\n");
        File.WriteAllLines(Path.Combine(run, "metrics.jsonl"),
            ["{\"step\": 10, \"loss\": 2.0}", "{\"step\": 20, \"loss\": 1.5, \"eval_ndcg@10\": 0.4321}", "{\"step\": 30, \"loss\": 1.2}"]);
        using var model = new M3Model(XlmRobertaConfig.Tiny());
        M3CheckpointWriter.Save(model, Path.Combine(run, "final"));
        M3CheckpointWriter.Save(model, Path.Combine(run, "checkpoints", ".tmp-step-00000020-0123abcd"));

        string card = File.ReadAllText(Path.Combine(run, "final", "README.md"));
        Assert.StartsWith("---\nlibrary_name: sentence-transformers\n", card);
        Assert.Contains("# final", card);
        Assert.Contains($"{model.Config.NumHiddenLayers} layers, hidden size {model.Config.HiddenSize}", card);
        Assert.Contains("| Base model | `data/models/tiny-m3` |", card);
        Assert.Contains("| Training data | `data/train/a.jsonl`, `data/train/b.jsonl` |", card);
        Assert.Contains("| Steps | 30 |", card);
        Assert.Contains("| Evaluation (step 20) | eval_ndcg@10 0.4321 |", card);
        Assert.Contains("SentenceTransformer(\"path/to/final\")", card);

        string checkpointCard = File.ReadAllText(Path.Combine(run, "checkpoints", ".tmp-step-00000020-0123abcd", "README.md"));
        Assert.Contains("# step-00000020", checkpointCard);
        Assert.Contains("| Steps | 20 |", checkpointCard);
    }

    [Fact]
    public void AModelSavedOutsideARunNamesWhereItWasLoadedFrom()
    {
        using var checkpoint = M3Checkpoint.Load(GoldenFolder.ReferenceCheckpoint);
        checkpoint.Save(_temp.Sub("copy"));
        string card = File.ReadAllText(_temp.Sub("copy/README.md"));
        Assert.Contains($"| Base model | `{GoldenFolder.ReferenceCheckpoint}` |", card);
        Assert.DoesNotContain("| Steps |", card);
    }

    [Fact]
    public void AnExtendedCheckpointGetsTheLongerSequenceLength()
    {
        string extended = _temp.Sub("extended");
        PositionExtension.Extend(GoldenFolder.ReferenceCheckpoint, extended, 258, PositionExtensionMethod.Copy);
        AssertSentenceTransformersFiles(extended, XlmRobertaConfig.Load(Path.Combine(extended, "config.json")).HiddenSize, 256);
        AssertPortable(Path.Combine(extended, TokenizerFiles.ConfigFile));
    }

    /// <summary>The form both transformers versions load: the list under 4.x's additional_special_tokens, none under extra_special_tokens.</summary>
    static void AssertPortable(string tokenizerConfig)
    {
        var root = Json(tokenizerConfig).AsObject();
        Assert.False(root.ContainsKey("extra_special_tokens") && root["extra_special_tokens"] is JsonArray, $"{tokenizerConfig}: extra_special_tokens is a list, which transformers 4.x cannot read");
        Assert.IsType<JsonArray>(root["additional_special_tokens"]);
    }

    [Fact]
    public void SavedTokenizerConfigLoadsInTransformers4And5()
    {
        string source = _temp.Sub("v5");
        Directory.CreateDirectory(source);
        File.Copy(Path.Combine(GoldenFolder.ReferenceCheckpoint, "sentencepiece.bpe.model"), Path.Combine(source, "sentencepiece.bpe.model"));
        File.WriteAllText(Path.Combine(source, TokenizerFiles.ConfigFile),
            "{\"model_max_length\": 1000000000000000019884624838656, \"extra_special_tokens\": [\"<s>\", \"</s>\"], \"bos_token\": \"<s>\", \"additional_special_tokens\": [\"</s>\", \"<extra>\"]}");
        string target = _temp.Sub("saved");
        Directory.CreateDirectory(target);

        Assert.Equal(["sentencepiece.bpe.model", TokenizerFiles.ConfigFile], TokenizerFiles.Copy(source, target));

        string written = File.ReadAllText(Path.Combine(target, TokenizerFiles.ConfigFile));
        var root = JsonNode.Parse(written)!.AsObject();
        Assert.Equal(["additional_special_tokens", "bos_token", "model_max_length"], root.Select(kv => kv.Key));
        Assert.Equal(["</s>", "<extra>", "<s>"], root["additional_special_tokens"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Contains("\"model_max_length\": 1000000000000000019884624838656", written);
        Assert.Null(TokenizerFiles.Portable(written));
    }

    public static TheoryData<string> ShippedTokenizerConfigs()
    {
        var data = new TheoryData<string>();
        foreach (string file in Directory.GetFiles(Path.Combine(DataTestFolder.RepoRoot, "data"), TokenizerFiles.ConfigFile, SearchOption.AllDirectories)
                     .Concat(Directory.GetFiles(GoldenFolder.Path, TokenizerFiles.ConfigFile, SearchOption.AllDirectories)))
            data.Add(Path.GetRelativePath(DataTestFolder.RepoRoot, file));
        return data;
    }

    [Theory]
    [MemberData(nameof(ShippedTokenizerConfigs))]
    public void ShippedTokenizerConfigsArePortable(string relativePath) =>
        AssertPortable(Path.Combine(DataTestFolder.RepoRoot, relativePath));
}
