using M3Train.Eval;
using Xunit;

namespace M3Train.Tests.Eval;

public sealed class BeirReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("m3train-beir-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, params string[] lines)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void ReadsCorpusQueriesAndQrels()
    {
        var corpus = BeirReader.ReadCorpus(Write("corpus.jsonl",
            """{"_id": "d1", "title": "Arctic Norway", "text": "north of the circle", "metadata": {}}""",
            "",
            """{"_id": 42, "text": "no title"}"""));
        Assert.Equal([new BeirDocument("d1", "Arctic Norway", "north of the circle"), new BeirDocument("42", "", "no title")], corpus);
        Assert.Equal("Arctic Norway north of the circle", corpus[0].EncodingText);
        Assert.Equal("no title", corpus[1].EncodingText);

        var queries = BeirReader.ReadQueries(Write("queries.jsonl", """{"_id": "q1", "text": "where is the arctic circle"}"""));
        Assert.Equal([new BeirQuery("q1", "where is the arctic circle")], queries);

        var qrels = BeirReader.ReadQrels(Write("test.tsv", "query-id\tcorpus-id\tscore", "q1\td1\t2", "q1\t42\t0", "q2\td1\t1"));
        Assert.Equal(2, qrels.For("q1")["d1"]);
        Assert.Equal(0, qrels.For("q1")["42"]);
        Assert.Equal(1, qrels.RelevantCount("q1"));
        Assert.Empty(qrels.For("q3"));
    }

    [Fact]
    public void ReadsTrecQrelsWithoutHeader()
    {
        var qrels = BeirReader.ReadQrels(Write("qrels.txt", "q1 0 d1 1", "q1 0 d2 3"));
        Assert.Equal(3, qrels.For("q1")["d2"]);
    }

    [Theory]
    [InlineData("""{"_id": "d1", "text": "a"}|{"_id": "d2", "text": 5}""", "corpus.jsonl:2: \"text\" must be a string")]
    [InlineData("""{"_id": "d1", "text": "a"}|{"text": "b"}""", "corpus.jsonl:2: missing \"_id\"")]
    [InlineData("""{"_id": "d1", "text": "a"}|{"_id": "d1", "text": "b"}""", "corpus.jsonl:2: \"_id\" 'd1' repeats line 1")]
    [InlineData("""{"_id": "d1", "text": "a"}|{"_id": "d2", "text": "b"|""", "corpus.jsonl:2: not a JSON object")]
    [InlineData("""[1, 2]""", "corpus.jsonl:1: expected a JSON object")]
    public void CorpusErrorsNameFileAndLine(string content, string expected)
    {
        var e = Assert.Throws<M3TrainException>(() => BeirReader.ReadCorpus(Write("corpus.jsonl", content.Split('|'))));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("query-id\tcorpus-id\tscore|q1\td1\t1|q1\td2", "test.tsv:3: expected 3 columns")]
    [InlineData("query-id\tcorpus-id\tscore|q1\td1\thigh", "test.tsv:2: score 'high' is not an integer")]
    [InlineData("query-id\tcorpus-id\tscore|q1\td1\t1|q1\td1\t2", "test.tsv:3: query 'q1', document 'd1' judged 2 here and 1 on line 2")]
    public void QrelsErrorsNameFileAndLine(string content, string expected)
    {
        var e = Assert.Throws<M3TrainException>(() => BeirReader.ReadQrels(Write("test.tsv", content.Split('|'))));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void MissingFileIsAUserError() =>
        Assert.Contains("file not found", Assert.Throws<M3TrainException>(() => BeirReader.ReadQueries(Path.Combine(_dir, "none.jsonl"))).Message);

    [Fact]
    public void AFolderGivenAsAFileIsNamedAsSuch()
    {
        var error = Assert.Throws<M3TrainException>(() => BeirReader.ReadQrels(_dir));
        Assert.Equal($"{_dir}: is a folder; expected a file", error.Message);
    }
}
