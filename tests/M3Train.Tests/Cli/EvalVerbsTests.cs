using System.Text.Json;
using System.Text.Json.Nodes;
using M3Train.Eval;
using M3Train.Tests.Eval;
using M3Train.Tests.Export;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary><c>m3train eval</c>, <c>mine</c>, <c>teacher-scores</c> and <c>inspect</c> end to end on the shipped tiny model and sample data.</summary>
[Trait("Category", "Slow")]
public class EvalVerbsTests(ITestOutputHelper output)
{
    static readonly string Model = TinyInference.ModelDir;

    (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        var result = M3TrainProcess.Run(args);
        output.WriteLine($"$ m3train {string.Join(" ", args)}\n{result.Stdout}{result.Stderr}");
        return result;
    }

    static string[] EvalArgs(string corpus, string queries, string qrels) =>
        ["eval", "--model", Model, "--corpus", corpus, "--queries", queries, "--qrels", qrels];

    [Fact]
    public void EvalPrintsTheReportWritesJsonAndReusesTheCorpusCache()
    {
        using var folder = new TempFolder();
        string[] args = [.. EvalArgs(TinyInference.Sample("corpus.jsonl"), TinyInference.Sample("queries.jsonl"), TinyInference.Sample("qrels.tsv")),
            "--cache-dir", folder.Sub("cache"), "--output", folder.Sub("report.json"), "--max-passage-length", "32", "--max-query-length", "32"];
        var first = Run(args);
        Assert.True(first.ExitCode == 0, first.Stderr);
        foreach (string mode in new[] { "dense", "sparse", "colbert", "dense+sparse", "all" })
            Assert.Contains($"\n{mode} ", "\n" + first.Stdout);
        Assert.Contains("Cached corpus encodings", first.Stderr);
        var report = JsonNode.Parse(File.ReadAllText(folder.Sub("report.json")))!;
        Assert.Equal(1086, report["documents"]!.GetValue<int>());
        Assert.Equal(32, report["max_passage_length"]!.GetValue<int>());
        Assert.False(report["cache"]!["reused"]!.GetValue<bool>());
        Assert.Equal(30, report["modes"]!["all"]!["queries_evaluated"]!.GetValue<int>());

        var second = Run(args);
        Assert.True(second.ExitCode == 0, second.Stderr);
        Assert.Contains("Reusing cached corpus encodings", second.Stderr);
        Assert.Equal(first.Stdout, second.Stdout);
        Assert.True(JsonNode.Parse(File.ReadAllText(folder.Sub("report.json")))!["cache"]!["reused"]!.GetValue<bool>());
    }

    [Fact]
    public void EvalNamesTheFileAndLineOfBadInput()
    {
        using var folder = new TempFolder();
        string corpus = folder.Sub("corpus.jsonl"), queries = folder.Sub("queries.jsonl"), qrels = folder.Sub("qrels.tsv");
        File.WriteAllText(corpus, "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d2\", \"text\": 5}\n");
        File.WriteAllText(queries, "{\"_id\": \"q1\", \"text\": \"a\"}\n");
        File.WriteAllText(qrels, "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
        var badCorpus = Run(EvalArgs(corpus, queries, qrels));
        Assert.Equal(2, badCorpus.ExitCode);
        Assert.Contains($"{corpus}:2: \"text\" must be a string", badCorpus.Stderr);

        File.WriteAllText(corpus, "{\"_id\": \"d1\", \"text\": \"a\"}\n");
        File.WriteAllText(qrels, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\n");
        var unknownQuery = Run(EvalArgs(corpus, queries, qrels));
        Assert.Equal(2, unknownQuery.ExitCode);
        Assert.Contains($"{qrels}: 1 query id(s) not in {queries}: 'q9'", unknownQuery.Stderr);

        var badMode = Run([.. EvalArgs(corpus, queries, TinyInference.Sample("qrels.tsv")), "--modes", "dense,bm25"]);
        Assert.Equal(2, badMode.ExitCode);
        Assert.Contains("unknown mode 'bm25'", badMode.Stderr);
    }

    [Fact]
    public void MineKeepsEveryOtherFieldAndTheSameSeedGivesTheSameFile()
    {
        using var folder = new TempFolder();
        // nli.jsonl: 10 rows with prompt, type and teacher scores, one negative each (a pool of 20 texts).
        string input = TinyInference.TrainFile("nli.jsonl");
        string[] Args(string output) => ["mine", "--model", Model, "--input", input, "--output", output, "--range", "2-15",
            "--negatives", "5", "--seed", "3", "--max-passage-length", "64", "--max-query-length", "32"];
        var first = Run(Args(folder.Sub("a.jsonl")));
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Contains("Removed pos_scores/neg_scores from 10 rows", first.Stderr);
        Assert.Equal(0, Run(Args(folder.Sub("b.jsonl"))).ExitCode);
        Assert.Equal(File.ReadAllBytes(folder.Sub("a.jsonl")), File.ReadAllBytes(folder.Sub("b.jsonl")));

        var inputs = File.ReadAllLines(input).Where(l => l.Trim().Length > 0).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var mined = File.ReadAllLines(folder.Sub("a.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(inputs.Count, mined.Count);
        for (int i = 0; i < inputs.Count; i++)
        {
            Assert.Equal(inputs[i].Select(kv => kv.Key).Where(k => k is not ("pos_scores" or "neg_scores")), mined[i].Select(kv => kv.Key));
            foreach (string key in new[] { "query", "pos", "prompt", "type" })
                Assert.True(JsonNode.DeepEquals(inputs[i][key], mined[i][key]), key);
            var negatives = mined[i]["neg"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
            Assert.Equal(5, negatives.Count);
            Assert.DoesNotContain(mined[i]["query"]!.GetValue<string>(), negatives);
            Assert.DoesNotContain(mined[i]["pos"]![0]!.GetValue<string>(), negatives);
        }
    }

    [Fact]
    public void MineWritesSentenceTransformersRowsBackUnderM3TrainsNames()
    {
        using var folder = new TempFolder();
        // nli.jsonl's rows renamed as sentence-transformers names them, pos and neg as single strings.
        string input = folder.Sub("triplets.jsonl");
        File.WriteAllLines(input, File.ReadAllLines(TinyInference.TrainFile("nli.jsonl")).Where(l => l.Trim().Length > 0).Select(l =>
        {
            var row = JsonNode.Parse(l)!.AsObject();
            return new JsonObject
            {
                ["anchor"] = row["query"]!.GetValue<string>(),
                ["positive"] = row["pos"]![0]!.GetValue<string>(),
                ["negative"] = row["neg"]![0]!.GetValue<string>(),
                ["type"] = row["type"]!.GetValue<string>(),
            }.ToJsonString();
        }));
        var result = Run("mine", "--model", Model, "--input", input, "--output", folder.Sub("mined.jsonl"), "--range", "2-15",
            "--negatives", "3", "--max-passage-length", "64", "--max-query-length", "32");
        Assert.True(result.ExitCode == 0, result.Stderr);
        foreach (var row in File.ReadAllLines(folder.Sub("mined.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()))
        {
            Assert.Equal(["query", "pos", "neg", "type"], row.Select(kv => kv.Key));
            Assert.Single(row["pos"]!.AsArray());
        }
    }

    [Fact]
    public void MineNamesTheFileAndLineOfBadInput()
    {
        using var folder = new TempFolder();
        string rows = folder.Sub("train.jsonl");
        File.WriteAllText(rows, "{\"query\": \"q\", \"pos\": [\"p\"], \"neg\": [\"n\"]}\n{\"query\": \"q\", \"pos\": 7}\n");
        var badRow = Run("mine", "--model", Model, "--input", rows, "--output", folder.Sub("out.jsonl"));
        Assert.Equal(2, badRow.ExitCode);
        Assert.Contains($"{rows}:2: \"pos\" is a number, not a string or a list of strings; expected {{\"query\": \"...\", \"pos\": [\"...\"]", badRow.Stderr);

        File.WriteAllText(rows, "{\"text\": \"a text to pretrain on\"}\n");
        var texts = Run("mine", "--model", Model, "--input", rows, "--output", folder.Sub("out.jsonl"));
        Assert.Equal(2, texts.ExitCode);
        Assert.Contains($"{rows}:1 holds {{\"text\"}} rows: those are for `m3train pretrain` (RetroMAE) and `m3train encode`; mine needs {{\"query\",\"pos\"}} rows", texts.Stderr);

        File.WriteAllText(rows, "{\"query\": \"q\", \"pos\": [\"p\"], \"neg\": [\"n\"]}\n");
        string pool = folder.Sub("pool.jsonl");
        File.WriteAllText(pool, "{\"text\": \"a\"}\n\n{\"body\": \"b\"}\n");
        var badPool = Run("mine", "--model", Model, "--input", rows, "--output", folder.Sub("out.jsonl"), "--candidate-pool", pool);
        Assert.Equal(2, badPool.ExitCode);
        Assert.Contains($"{pool}:3: expected {{\"text\": \"...\"}}", badPool.Stderr);

        var badRange = Run("mine", "--model", Model, "--input", rows, "--output", folder.Sub("out.jsonl"), "--range", "30-10");
        Assert.Equal(2, badRange.ExitCode);
        Assert.Contains("--range 30-10", badRange.Stderr);
        Assert.False(File.Exists(folder.Sub("out.jsonl")));
    }

    [Fact]
    public void TeacherScoresEqualTheScoreVerbsHybridScoresOfTheSamePairs()
    {
        using var folder = new TempFolder();
        string input = TinyInference.TrainFile("toy_train_data1.jsonl");
        string[] common = ["--model", Model, "--weights", "1,0.3,1", "--max-query-length", "32", "--max-passage-length", "64"];
        var result = Run(["teacher-scores", "--input", input, "--output", folder.Sub("scored.jsonl"), .. common]);
        Assert.True(result.ExitCode == 0, result.Stderr);

        var rows = TrainingRowFile.Read(input, "teacher-scores");
        var pairs = rows.SelectMany(r => r.Row.Positives.Concat(r.Row.Negatives).Select(p => new JsonObject { ["query"] = r.Query, ["passage"] = p }));
        File.WriteAllLines(folder.Sub("pairs.jsonl"), pairs.Select(p => p.ToJsonString()));
        var score = Run(["score", "--pairs", folder.Sub("pairs.jsonl"), "--output", folder.Sub("pair-scores.jsonl"), .. common]);
        Assert.True(score.ExitCode == 0, score.Stderr);
        var expected = File.ReadAllLines(folder.Sub("pair-scores.jsonl")).Select(l => JsonNode.Parse(l)!["colbert+sparse+dense"]!.GetValue<float>()).ToArray();

        var scored = File.ReadAllLines(folder.Sub("scored.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var written = scored.SelectMany(r => r["pos_scores"]!.AsArray().Concat(r["neg_scores"]!.AsArray())).Select(v => v!.GetValue<float>()).ToArray();
        Assert.Equal(80, written.Length);
        Assert.Equal(expected, written);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(["query", "pos", "neg", "pos_scores", "neg_scores"], scored[i].Select(kv => kv.Key));
            Assert.True(JsonNode.DeepEquals(rows[i].Json["neg"], scored[i]["neg"]));
            Assert.Equal(rows[i].Row.Negatives.Length, scored[i]["neg_scores"]!.AsArray().Count);
        }
    }

    [Fact]
    public void InspectPrintsHealthFiguresScoreMeansAndTopTokens()
    {
        var result = Run("inspect", "--model", Model, "--input", TinyInference.TrainFile("toy_train_data1.jsonl"), "--top", "4", "--examples", "2");
        Assert.True(result.ExitCode == 0, result.Stderr);
        string[] lines = result.Stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("queries ", StringComparison.Ordinal) && l.Contains(" 10 "));
        Assert.Contains(lines, l => l.StartsWith("passages ", StringComparison.Ordinal) && l.Contains(" 80 "));
        Assert.Contains(lines, l => l.StartsWith("positives ", StringComparison.Ordinal) && l.Contains(" 10 "));
        Assert.Contains(lines, l => l.StartsWith("negatives ", StringComparison.Ordinal) && l.Contains(" 70 "));
        int examples = Array.IndexOf(lines, "top-weighted tokens:");
        Assert.True(examples > 0, result.Stdout);
        Assert.StartsWith("  \"Five women walk along a beach wearing flip-flops.\": ", lines[examples + 1]);
        Assert.Equal(4, lines[examples + 1].Split(':')[1].Split(',').Length);
    }
}
