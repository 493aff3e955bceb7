using System.Text.Json.Nodes;
using M3Train.Cli;
using M3Train.Config;
using M3Train.Tests.Cli;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Config;

/// <summary><c>m3train config</c>: a reference generated from the config records themselves, foreign key names, and the resolved config.</summary>
public sealed class ConfigReferenceTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("m3config-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    static IReadOnlyList<ConfigKeyDoc> Reference => ConfigReference.For<RunConfig>(XmlDocs.For(typeof(RunConfig).Assembly));

    static IEnumerable<string> LeafKeys(JsonNode? node, string prefix) => node is JsonObject o && (prefix.Length == 0 || o.Count > 0)
        ? o.SelectMany(kv => LeafKeys(kv.Value, prefix + kv.Key + "."))
        : [prefix.TrimEnd('.')];

    /// <summary>The keys of a list's entries (KEY[].entry_key): documented, but not set as keys of their own.</summary>
    static bool IsEntryKey(ConfigKeyDoc key) => key.Key.Contains("[].", StringComparison.Ordinal);

    [Fact]
    public void EveryKeyTheWriterWritesIsInTheReferenceWithItsDoc()
    {
        var keys = Reference.Where(k => !IsEntryKey(k)).Select(k => k.Key).ToList();
        Assert.Equal(LeafKeys(ConfigWriter.ToJson(new RunConfig()), "").Order(StringComparer.Ordinal), keys.Order(StringComparer.Ordinal));
        Assert.All(Reference, k => Assert.True(k.Doc.Length > 0, $"{k.Key} has no doc comment"));
    }

    [Fact]
    public void EveryReferenceKeyBindsWithItsPrintedDefault()
    {
        // model.path has no usable default (a run must name its checkpoint), so every case names one.
        const string Minimal = "{\"model\": {\"path\": \"m\"}}";
        string expected = ConfigWriter.ToYaml(ConfigLoader.FromText<RunConfig>(Minimal, "reference.json"));
        foreach (var key in Reference.Where(k => k.Key != "model.path" && !IsEntryKey(k)))
        {
            var bound = ConfigLoader.FromText<RunConfig>(Minimal, "reference.json", [$"{key.Key}={key.Default}"]);
            Assert.Equal(expected, ConfigWriter.ToYaml(bound));
        }
    }

    [Fact]
    public void TheKeysOfListEntriesAreListedWithTheirDocs()
    {
        foreach (string key in new[] { "data.dataset_overrides[].path", "data.dataset_overrides[].batch_size", "data.dataset_overrides[].train_group_size" })
            Assert.True(Reference.Single(k => k.Key == key).Doc.Length > 0, $"{key} has no doc comment");
        Assert.Equal("an integer or null", Reference.Single(k => k.Key == "data.dataset_overrides[].batch_size").Type);
        Assert.Equal("[]", Reference.Single(k => k.Key == "data.dataset_overrides").Default);
    }

    [Fact]
    public void DocsReadAsText()
    {
        var epochs = Reference.Single(k => k.Key == "train.epochs");
        Assert.Equal("an integer", epochs.Type);
        Assert.Equal("4", epochs.Default);
        Assert.Contains("Ignored when max_steps is set", epochs.Doc);
        Assert.Equal("an integer or null", Reference.Single(k => k.Key == "train.max_steps").Type);
        Assert.Equal("one of linear, log", Reference.Single(k => k.Key == "train.warmup").Type);
    }

    [Fact]
    public void ReferenceVerbPrintsEveryKey()
    {
        string text = CapturedStdout(() => Assert.Equal(0, CliRun.Run("config", "--reference").ExitCode));
        foreach (var key in Reference)
            Assert.Contains($"{key.Key} ({key.Type}, default {key.Default})\n    {key.Doc}\n", text);
    }

    [Fact]
    public void ShowPrintsTheResolvedConfigWithOverrides()
    {
        string file = Path.Combine(_root, "run.yaml");
        File.WriteAllText(file, "model:\n  path: data/models/tiny-m3\ntrain:\n  lr: 2e-5\n");
        string text = CapturedStdout(() => Assert.Equal(0, CliRun.Run("config", "--show", file, "--set", "train.epochs=2").ExitCode));
        var shown = ConfigLoader.FromText<RunConfig>(text, "shown.yaml");
        Assert.Equal(2e-5, shown.Train.Lr);
        Assert.Equal(2, shown.Train.Epochs);
        Assert.Equal(new RunConfig().Data.TrainGroupSize, shown.Data.TrainGroupSize);
        Assert.Contains("train_group_size: 8", text);
    }

    [Theory]
    [InlineData("train:\n  learning_rate: 1e-5\n", "'train.learning_rate': unknown key; FlagEmbedding/HF 'learning_rate' is 'train.lr' here.")]
    [InlineData("train_data: [a.jsonl]\n", "'train_data': unknown key; FlagEmbedding/HF 'train_data' is 'data.files' here.")]
    [InlineData("data:\n  temperature: 0.02\n", "'data.temperature': unknown key; FlagEmbedding/HF 'temperature' is 'loss.temperature' here.")]
    [InlineData("train:\n  bf16: true\n", "'train.bf16': unknown key; FlagEmbedding/HF 'bf16' is 'train.precision: bf16' here.")]
    [InlineData("model:\n  sentence_pooling_method: cls\n", "'model.sentence_pooling_method': unknown key; FlagEmbedding/HF 'sentence_pooling_method' has no key here")]
    public void ForeignArgumentNamesSayWhichKeyTheyAreHere(string yaml, string message)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.FromText<RunConfig>(yaml, "my.yaml"));
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void EveryForeignNameTargetIsAKey()
    {
        var keys = Reference.Select(k => k.Key).ToHashSet();
        Assert.All(ForeignKeyNames.Keys, kv => Assert.Contains(kv.Value.Split(':')[0], keys));
    }

    static string CapturedStdout(Action action)
    {
        var previous = Console.Out;
        var captured = new StringWriter();
        Console.SetOut(captured);
        try
        {
            action();
        }
        finally
        {
            Console.SetOut(previous);
        }
        return captured.ToString();
    }
}
