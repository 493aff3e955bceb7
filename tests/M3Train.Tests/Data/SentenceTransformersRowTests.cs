using System.Text;
using System.Text.Json.Serialization;
using M3Train.Data;
using Parquet.Serialization;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>Rows as sentence-transformers writes them, and plain-string pos/neg, read as m3train's fine-tuning rows.</summary>
public class SentenceTransformersRowTests
{
    static TrainRow Parse(string line)
    {
        var row = JsonlRowParser.Parse(Encoding.UTF8.GetBytes(line), out string? problem);
        Assert.True(row is not null, problem);
        return row!;
    }

    static string Problem(string line)
    {
        Assert.Null(JsonlRowParser.Parse(Encoding.UTF8.GetBytes(line), out string? problem));
        return problem!;
    }

    [Theory]
    [InlineData("""{"anchor": "q", "positive": "p", "negative": "n"}""")]
    [InlineData("""{"anchor": "q", "positive": ["p"], "negative": ["n"]}""")]
    [InlineData("""{"query": "q", "pos": "p", "neg": "n"}""")]
    [InlineData("""{"query": "q", "positive": "p", "neg": ["n"]}""")]
    public void AnchorPositiveNegativeAndPlainStringsAreAQueryWithItsPassages(string line)
    {
        var row = Parse(line);
        Assert.Equal(RowKind.Group, row.Kind);
        Assert.Equal("q", row.Query);
        Assert.Equal(["p"], row.Positives);
        Assert.Equal(["n"], row.Negatives);
        Assert.Null(row.Problem());
    }

    [Fact]
    public void ListsKeepEveryPassageInOrder()
    {
        var row = Parse("""{"anchor": "q", "positive": ["p1", "p2"], "negative": ["n1", "n2", "n3"]}""");
        Assert.Equal(["p1", "p2"], row.Positives);
        Assert.Equal(["n1", "n2", "n3"], row.Negatives);
    }

    [Theory]
    [InlineData("""{"query": "q", "anchor": "a", "pos": ["p"]}""", "both \"query\" and \"anchor\"")]
    [InlineData("""{"query": "q", "pos": ["p"], "positive": ["p"]}""", "both \"pos\" and \"positive\"")]
    [InlineData("""{"query": "q", "pos": ["p"], "neg": ["n"], "negative": "n"}""", "both \"neg\" and \"negative\"")]
    public void BothNamesOfOneFieldAreRefused(string line, string expected) => Assert.Contains(expected, Problem(line));

    [Theory]
    [InlineData("""{"question": "q", "answer": "p"}""", "missing \"query\"")]
    [InlineData("""{"query": "q", "pos": 3}""", "\"pos\" is a number, not a string or a list of strings")]
    [InlineData("""["q", "p"]""", "not a JSON object")]
    public void ARejectedRowSaysWhatARowLooksLike(string line, string reason)
    {
        string problem = Problem(line);
        Assert.StartsWith(reason, problem);
        Assert.Contains("expected {\"query\": \"...\", \"pos\": [\"...\"], \"neg\": [\"...\"]}", problem);
        Assert.Contains("{\"anchor\", \"positive\", \"negative\"}", problem);
        Assert.Contains("{\"text\": \"...\"} for pretraining", problem);
    }

    [Fact]
    public void AFileOfSentenceTransformersRowsLoadsForTraining()
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("triplets.jsonl", """
            {"anchor": "what is a cat", "positive": "a cat is an animal", "negative": "a car has wheels"}
            {"anchor": "what is rain", "positive": ["rain is water falling"], "negative": ["rain is a band", "sun is hot"]}
            """ + "\n");
        using var data = DataTestFolder.Load(new DataConfig { Files = [path], TrainGroupSize = 2, CacheTokenCounts = false });
        var dataset = Assert.Single(data.Datasets);
        Assert.Equal(2, dataset.Count);
        var rows = Enumerable.Range(0, 2).Select(dataset.ReadRow).OrderBy(r => r.Query).ToList();
        Assert.Equal(("what is a cat", "a car has wheels"), (rows[0].Query, Assert.Single(rows[0].Negatives)));
        Assert.Equal(["rain is a band", "sun is hot"], rows[1].Negatives);
    }

    [Fact]
    public async Task ParquetTakesSentenceTransformersColumnsAndStringColumns()
    {
        using var folder = new DataTestFolder();
        string path = Path.Combine(folder.Path, "triplets.parquet");
        await ParquetSerializer.SerializeAsync(new[]
        {
            new Triplet { Anchor = "what is a cat", Positive = "a cat is an animal", Negative = "a car has wheels" },
            new Triplet { Anchor = "what is rain", Positive = "rain is water falling", Negative = "rain is a band" },
        }, path, cancellationToken: TestContext.Current.CancellationToken);
        using var data = DataTestFolder.Load(new DataConfig { Files = [path], TrainGroupSize = 2, CacheTokenCounts = false });
        var dataset = Assert.Single(data.Datasets);
        var row = Enumerable.Range(0, dataset.Count).Select(dataset.ReadRow).Single(r => r.Query == "what is rain");
        Assert.Equal(["rain is water falling"], row.Positives);
        Assert.Equal(["rain is a band"], row.Negatives);
    }

    [Fact]
    public async Task AParquetFileWithBothNamesOfAFieldIsABadSchema()
    {
        using var folder = new DataTestFolder();
        string path = Path.Combine(folder.Path, "both.parquet");
        await ParquetSerializer.SerializeAsync(new[] { new BothNames { Query = "q", Anchor = "q", Pos = ["p"] } }, path,
            cancellationToken: TestContext.Current.CancellationToken);
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(new DataConfig { Files = [path], TrainGroupSize = 1, CacheTokenCounts = false }));
        Assert.Contains("columns \"query\" and \"anchor\" are the same field", e.Message);
    }

    sealed class Triplet
    {
        [JsonPropertyName("anchor")] public string? Anchor { get; set; }
        [JsonPropertyName("positive")] public string? Positive { get; set; }
        [JsonPropertyName("negative")] public string? Negative { get; set; }
    }

    sealed class BothNames
    {
        [JsonPropertyName("query")] public string? Query { get; set; }
        [JsonPropertyName("anchor")] public string? Anchor { get; set; }
        [JsonPropertyName("pos")] public List<string>? Pos { get; set; }
    }
}
