using M3Train.Data;
using Parquet.Serialization;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>Every class of bad input under both policies: error names file:line and the reason; skip leaves the row out and counts it.</summary>
public class BadRowTests
{
    const string Good1 = """{"query": "q one", "pos": ["p one"], "neg": ["n one", "n two"], "pos_scores": [1.0], "neg_scores": [0.5, 0.2]}""";
    const string Good2 = """{"query": "q two", "pos": ["p two"], "neg": ["n three"], "pos_scores": [0.9], "neg_scores": [0.1]}""";

    public static TheoryData<string, string> BadLines() => new()
    {
        { """{"query": "q", "pos": ["p"], "neg": ["n"]""", "malformed JSON" },
        { """{"pos": ["p"], "neg": ["n"]}""", "missing \"query\"" },
        { """{"query": 42, "pos": ["p"], "neg": ["n"]}""", "\"query\" is a number, not a string" },
        { """{"query": "q", "pos": [], "neg": ["n"]}""", "\"pos\" is empty" },
        { """{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0, 2.0], "neg_scores": [0.1]}""", "\"pos_scores\" has 2 values for 1" },
        { """{"query": "q", "pos": ["p"], "neg": ["n", "m"], "pos_scores": [1.0], "neg_scores": [0.1]}""", "\"neg_scores\" has 1 values for 2" },
        { """{"query": "q", "pos": ["p"], "neg": []}""", "\"neg\" is empty but groups have 4 passages" },
        { """[1, 2]""", "not a JSON object" },
        { """{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1e39], "neg_scores": [0.1]}""", "\"pos_scores\"[0] is Infinity, not a finite number" },
        { """{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0], "neg_scores": [-1e400]}""", "\"neg_scores\"[0] is -Infinity, not a finite number" },
    };

    static DataConfig Config(string path, BadRowPolicy policy) =>
        new() { Files = [path], OnBadRow = policy, TrainGroupSize = 4, CacheTokenCounts = false };

    [Theory]
    [MemberData(nameof(BadLines))]
    public void ErrorPolicyFailsWithFileLineAndReason(string badLine, string reason)
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("bad.jsonl", string.Join("\n", Good1, badLine, Good2) + "\n");
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path, BadRowPolicy.Error)));
        Assert.Contains($"{path}:2: ", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [MemberData(nameof(BadLines))]
    public void SkipPolicyLeavesTheRowOutAndCountsIt(string badLine, string reason)
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("bad.jsonl", string.Join("\n", Good1, badLine, Good2) + "\n");
        using var data = DataTestFolder.Load(Config(path, BadRowPolicy.Skip));
        var dataset = Assert.Single(data.Datasets);
        Assert.Equal(2, dataset.Count);
        Assert.Equal(["q one", "q two"], Enumerable.Range(0, 2).Select(i => dataset.ReadRow(i).Query));
        Assert.Equal(3, Assert.Single(data.Files).TotalRows);
        var bad = Assert.Single(data.SkippedRows[path]);
        Assert.Equal($"{path}:2", bad.Location);
        Assert.Contains(reason, bad.Reason);
    }

    [Fact]
    public void InvalidUtf8FailsOrIsSkipped()
    {
        using var folder = new DataTestFolder();
        byte[] bytes = [.. System.Text.Encoding.UTF8.GetBytes(Good1 + "\n{\"query\": \"caf"), 0xC3, 0x28, .. System.Text.Encoding.UTF8.GetBytes("\", \"pos\": [\"p\"], \"neg\": [\"n\"]}\n" + Good2 + "\n")];
        string path = folder.WriteBytes("utf8.jsonl", bytes);
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path, BadRowPolicy.Error)));
        Assert.Contains($"{path}:2: invalid UTF-8", e.Message);
        using var data = DataTestFolder.Load(Config(path, BadRowPolicy.Skip));
        Assert.Equal(2, data.Datasets[0].Count);
        Assert.Equal("invalid UTF-8", Assert.Single(data.SkippedRows[path]).Reason);
    }

    [Fact]
    public void EmptyAfterSkippingIsAnError()
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("allbad.jsonl", "{\"pos\": [\"p\"]}\nnot json\n");
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path, BadRowPolicy.Skip)));
        Assert.Contains($"{path}: no rows left after skipping 2 bad rows", e.Message);
    }

    sealed class WrongTypes
    {
        [System.Text.Json.Serialization.JsonPropertyName("query")] public int Query { get; set; }
        [System.Text.Json.Serialization.JsonPropertyName("pos")] public List<string> Pos { get; set; } = [];
    }

    [Theory]
    [InlineData(BadRowPolicy.Error)]
    [InlineData(BadRowPolicy.Skip)]
    public async Task BadParquetSchemaFailsUnderBothPolicies(BadRowPolicy policy)
    {
        // Skipping cannot help: no row of the file is usable, and an empty dataset is an error.
        using var folder = new DataTestFolder();
        string path = System.IO.Path.Combine(folder.Path, "wrong.parquet");
        await ParquetSerializer.SerializeAsync(new[] { new WrongTypes { Query = 1, Pos = ["p"] } }, path, cancellationToken: TestContext.Current.CancellationToken);
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path, policy)));
        Assert.Contains($"{path}: bad Parquet schema: column \"query\" is Int32, expected a string", e.Message);
    }

    [Fact]
    public async Task ParquetRowWithoutQueryFailsOrIsSkipped()
    {
        using var folder = new DataTestFolder();
        string path = System.IO.Path.Combine(folder.Path, "rows.parquet");
        await ParquetSerializer.SerializeAsync(new[]
        {
            new ParquetTestRow { Query = "q one", Pos = ["p"], Neg = ["n"] },
            new ParquetTestRow { Query = null, Pos = ["p"], Neg = ["n"] },
        }, path, cancellationToken: TestContext.Current.CancellationToken);
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path, BadRowPolicy.Error)));
        Assert.Contains($"{path}: row 2: missing \"query\"", e.Message);
        using var data = DataTestFolder.Load(Config(path, BadRowPolicy.Skip));
        Assert.Equal(1, data.Datasets[0].Count);
    }
}
