using System.ComponentModel.DataAnnotations;
using M3Train.Config;
using Xunit;

namespace M3Train.Tests.Config;

public class ConfigBinderTests
{
    public enum Precision { Fp32, Bf16 }

    public sealed record Inner
    {
        [Range(1, 100)] public int GroupSize { get; init; } = 8;
        public List<string> Files { get; init; } = ["a.jsonl"];
        public string? Instruction { get; init; }
    }

    public sealed record Root : IConfigValidatable
    {
        [Range(0.0, 1.0, MinimumIsExclusive = true)] public double Lr { get; init; } = 1e-5;
        public Precision Precision { get; init; } = Precision.Fp32;
        public Inner Data { get; init; } = new() { GroupSize = 4 };
        public Dictionary<string, int> Sizes { get; init; } = new();
        public int WarmupSteps { get; init; }
        public int MaxSteps { get; init; } = 100;

        public IEnumerable<(string Key, string Message)> Validate()
        {
            if (WarmupSteps > MaxSteps) yield return ("warmup_steps", $"must not exceed max_steps ({MaxSteps}).");
        }
    }

    static Root Yaml(string text, params string[] sets) => ConfigLoader.FromText<Root>(text, "run.yaml", sets);

    [Fact]
    public void KeysNotGivenKeepTheirDefaults_IncludingNestedOnes()
    {
        var c = Yaml("lr: 2e-5\ndata:\n  files: [x.jsonl, y.jsonl]\n");
        Assert.Equal(2e-5, c.Lr);
        Assert.Equal(4, c.Data.GroupSize);
        Assert.Equal(["x.jsonl", "y.jsonl"], c.Data.Files);
        Assert.Null(c.Data.Instruction);
        Assert.Equal(Precision.Fp32, c.Precision);
    }

    [Fact]
    public void JsonAndYamlBindAlike()
    {
        var y = Yaml("precision: bf16\nsizes: {short: 48, long: 8}\n");
        var j = ConfigLoader.FromText<Root>("{\"precision\": \"bf16\", \"sizes\": {\"short\": 48, \"long\": 8}}", "run.json");
        Assert.Equal(Precision.Bf16, y.Precision);
        Assert.Equal(y.Precision, j.Precision);
        Assert.Equal(y.Sizes, j.Sizes);
    }

    [Fact]
    public void MisspeltKeyNamesTheKeyPathTheFileAndASuggestion()
    {
        var e = Assert.Throws<ConfigException>(() => Yaml("data:\n  group_sise: 3\n"));
        Assert.Equal("data.group_sise", e.KeyPath);
        Assert.Contains("run.yaml:2", e.Message);
        Assert.Contains("did you mean 'data.group_size'", e.Message);
    }

    [Fact]
    public void WrongTypeNamesTheKeyPath()
    {
        var e = Assert.Throws<ConfigException>(() => Yaml("data:\n  group_size: eight\n"));
        Assert.Equal("data.group_size", e.KeyPath);
        Assert.Contains("expected an integer", e.Message);

        var list = Assert.Throws<ConfigException>(() => Yaml("data:\n  files: one.jsonl\n"));
        Assert.Equal("data.files", list.KeyPath);

        var quoted = Assert.Throws<ConfigException>(() => ConfigLoader.FromText<Root>("{\"lr\": \"0.1\"}", "run.json"));
        Assert.Equal("lr", quoted.KeyPath);
    }

    [Fact]
    public void OutOfRangeValueNamesTheKeyPathAndTheRange()
    {
        var e = Assert.Throws<ConfigException>(() => Yaml("data:\n  group_size: 0\n"));
        Assert.Equal("data.group_size", e.KeyPath);
        Assert.Contains("out of range", e.Message);
        var lr = Assert.Throws<ConfigException>(() => Yaml("lr: 0\n"));
        Assert.Equal("lr", lr.KeyPath);
    }

    [Fact]
    public void SectionRulesReportTheirKey()
    {
        var e = Assert.Throws<ConfigException>(() => Yaml("warmup_steps: 200\nmax_steps: 100\n"));
        Assert.Equal("warmup_steps", e.KeyPath);
    }

    [Fact]
    public void SetOverridesAnyKey_AndBadOverridesNameThemselves()
    {
        var c = Yaml("lr: 2e-5\n", "lr=3e-5", "data.group_size=2", "data.files=[p.jsonl]", "precision=bf16", "data.instruction=Represent this: ");
        Assert.Equal(3e-5, c.Lr);
        Assert.Equal(2, c.Data.GroupSize);
        Assert.Equal(["p.jsonl"], c.Data.Files);
        Assert.Equal(Precision.Bf16, c.Precision);
        Assert.Equal("Represent this: ", c.Data.Instruction);

        var e = Assert.Throws<ConfigException>(() => Yaml("", "data.groupsize=2"));
        Assert.Contains("--set data.groupsize=2", e.Message);
        Assert.Equal("data.groupsize", e.KeyPath);
        Assert.Throws<M3TrainException>(() => Yaml("", "lr"));
    }

    [Fact]
    public void WrittenYamlReadsBackToTheSameConfig()
    {
        var c = Yaml("lr: 3e-5\nprecision: bf16\ndata:\n  group_size: 2\n  instruction: \"q: \\\"x\\\"\"\nsizes: {a: 1}\n");
        var back = Yaml(ConfigWriter.ToYaml(c));
        Assert.Null(Yaml(ConfigWriter.ToYaml(Yaml(""))).Data.Instruction);
        Assert.Equal(c.Lr, back.Lr);
        Assert.Equal(c.Precision, back.Precision);
        Assert.Equal(c.Data.GroupSize, back.Data.GroupSize);
        Assert.Equal(c.Data.Instruction, back.Data.Instruction);
        Assert.Equal(c.Data.Files, back.Data.Files);
        Assert.Equal(c.Sizes, back.Sizes);
    }

    [Fact]
    public void SnakeCaseFollowsHowPeopleWriteKeys()
    {
        Assert.Equal("query_max_len", ConfigBinder.SnakeCase("QueryMaxLen"));
        Assert.Equal("lr", ConfigBinder.SnakeCase("Lr"));
        Assert.Equal("kd_loss_type", ConfigBinder.SnakeCase("KdLossType"));
        Assert.Equal("m3_kd_loss", ConfigBinder.SnakeCase("M3KdLoss"));
    }
}
