using M3Train.Config;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Config;

/// <summary>Every malformed config is an error naming the file (and line where there is one), never a crash or a hang.</summary>
public sealed class ConfigParseErrorTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("m3-config-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    string Write(string name, string text)
    {
        string path = Path.Combine(_root, name);
        File.WriteAllText(path, text);
        return path;
    }

    public static TheoryData<string, string> Broken => new()
    {
        { "data:\n  files: [a.jsonl, b.jsonl\n", "invalid YAML" },
        { "data: [", "invalid YAML" },
        { "loss:\n[  temperature: 0\ntrain:\n  lr: 1\n", "unclosed '['" },
        { "model: {path: x", "invalid YAML" },
        { "model:\n  path: 'x\n", "invalid YAML" },
        { "? [a, b]\n: 1\n", "a key is a list or a mapping" },
        { "train:\n  lr: 1\n  lr: 2\n", "Duplicate key" },
        { "a: &x [1, 2]\nb: *x\n", "aliases" },
        { "output_dir: a\n---\noutput_dir: b\n", "more than one YAML document" },
        { new string('[', 100_000), "nested more than 64 levels" },
        { "a:\n" + string.Concat(Enumerable.Range(1, 200).Select(i => new string(' ', i) + "b:\n")), "nested more than 64 levels" },
        { "", "the config file is empty" },
        { "# only a comment\n\n", "the config file is empty" },
        { "---\n", "the config file is empty" },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void BrokenYamlIsAnErrorNamingTheFile(string text, string reason)
    {
        string path = Write("broken.yaml", text);
        var error = Assert.ThrowsAny<M3TrainException>(() => RunConfig.Load(path));
        Assert.StartsWith(path, error.Message);
        Assert.Contains(reason, error.Message);
    }

    [Theory]
    [InlineData("{\"model\": {\"path\": \"x\"", "invalid JSON")]
    [InlineData("", "invalid JSON")]
    [InlineData("{}", "the config file is empty")]
    public void BrokenJsonIsAnErrorNamingTheFile(string text, string reason)
    {
        string path = Write("broken.json", text);
        var error = Assert.ThrowsAny<M3TrainException>(() => RunConfig.Load(path));
        Assert.StartsWith(path, error.Message);
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void DeeplyNestedJsonIsAnError()
    {
        string path = Write("deep.json", new string('[', 10_000) + new string(']', 10_000));
        var error = Assert.ThrowsAny<M3TrainException>(() => RunConfig.Load(path));
        Assert.StartsWith(path, error.Message);
    }

    [Fact]
    public void AFolderGivenAsTheConfigIsNamedAsSuch()
    {
        var error = Assert.ThrowsAny<M3TrainException>(() => RunConfig.Load(_root));
        Assert.Equal($"{_root}: is a folder; --config takes a YAML or JSON file.", error.Message);
    }

    [Fact]
    public void AnAnchorWithoutAliasIsStillAPlainValue()
    {
        var config = ConfigLoader.FromText<RunConfig>("output_dir: &out runs/x\n", "anchored.yaml");
        Assert.Equal("runs/x", config.OutputDir);
    }

    [Fact]
    public void AProblemInAValueGivenByASetIsBlamedOnTheSetNotOnTheFileLineOfItsSection()
    {
        const string Yaml = "model: {path: m}\ntrain:\n  eval:\n    beir: data/beir-sample\n  save_best:\n    metric: eval_dense_ndcg@10\n";
        Assert.Equal("eval_dense_ndcg@10", ConfigLoader.FromText<RunConfig>(Yaml, "run.yaml").Train.SaveBest!.Metric);

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.FromText<RunConfig>(Yaml, "run.yaml", ["train.save_best.metric=eval_dense_ndcg"]));

        Assert.StartsWith("--set train.save_best.metric=eval_dense_ndcg: 'train.save_best.metric': 'eval_dense_ndcg' is not a figure", e.Message);
    }
}
