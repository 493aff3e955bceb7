using System.Text.Json.Nodes;
using M3Train.Tests.Eval;
using M3Train.Tests.Export;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary><c>m3train mine</c>'s <c>--on-empty</c> policy, through the process: what is written and what the log says.</summary>
public class MineCommandTests(ITestOutputHelper output)
{
    /// <summary>
    /// Mines the shipped toy rows (lines 1-10, one positive each) from a pool of line 1's own positive and query, over
    /// ranks 0-10: line 1 has no negative left, every other line gets those two texts.
    /// </summary>
    (int ExitCode, string Stderr, List<JsonObject>? Rows) MineWithAPoolLineOneCannotUse(TempFolder folder, params string[] extra)
    {
        string input = TinyInference.TrainFile("toy_train_data1.jsonl");
        var first = JsonNode.Parse(File.ReadLines(input).First())!;
        string pool = folder.Sub("pool.jsonl");
        File.WriteAllLines(pool, [new JsonObject { ["text"] = first["pos"]![0]!.GetValue<string>() }.ToJsonString(),
            new JsonObject { ["text"] = first["query"]!.GetValue<string>() }.ToJsonString()]);
        string mined = folder.Sub("mined.jsonl");
        string[] args = ["mine", "--model", TinyInference.ModelDir, "--input", input, "--output", mined, "--candidate-pool", pool,
            "--range", "0-10", "--negatives", "7", "--max-query-length", "32", "--max-passage-length", "64", .. extra];
        var (code, stdout, stderr) = M3TrainProcess.Run(args);
        output.WriteLine($"$ m3train {string.Join(" ", args)}\n{stdout}{stderr}");
        var rows = File.Exists(mined) ? File.ReadAllLines(mined).Select(l => JsonNode.Parse(l)!.AsObject()).ToList() : null;
        return (code, stderr, rows);
    }

    [Theory]
    [InlineData("drop")]
    [InlineData("keep")]
    [InlineData(null)]
    public void ARowWithNoNegativeIsReportedByLineAndWrittenAsThePolicySays(string? policy)
    {
        using var folder = new TempFolder();
        var (code, stderr, rows) = MineWithAPoolLineOneCannotUse(folder, policy is null ? [] : ["--on-empty", policy]);
        Assert.True(code == 0, stderr);
        Assert.Contains("1 of 10 rows had no negative left (input lines 1): the pool has no text beyond their positives", stderr);
        Assert.NotNull(rows);
        var survivors = policy == "keep" ? rows.Skip(1) : rows;
        Assert.Equal(9, survivors.Count());
        Assert.All(survivors, r => Assert.Equal(2, r["neg"]!.AsArray().Count));
        if (policy == "keep")
        {
            Assert.Empty(rows[0]["neg"]!.AsArray());
            Assert.Contains("--on-empty keep: wrote 1 rows with \"neg\": []", stderr);
        }
        else
        {
            // The default fills, but the pool holds nothing for line 1 but its own positive and query, so it goes too.
            Assert.Contains(policy == "drop" ? "--on-empty drop: left 1 rows out" : "Left out 1 rows: the pool holds no text other than their positives and query", stderr);
        }
    }

    [Fact]
    public void TheDefaultFillsRowsEveryCandidateOfWhichTheScoreFiltersRejectAndDropRefusesToWriteNothing()
    {
        // An absolute margin of 2 rejects every normalized dense score: with the default policy each row is filled with
        // random pool texts and said so; with drop nothing is left to write, which is an error, not an empty file.
        using var folder = new TempFolder();
        string input = TinyInference.TrainFile("toy_train_data1.jsonl");
        string[] common = ["mine", "--model", TinyInference.ModelDir, "--input", input, "--range", "2-60", "--negatives", "7",
            "--absolute-margin", "2", "--max-query-length", "32", "--max-passage-length", "64"];
        var filled = M3TrainProcess.Run([.. common, "--output", folder.Sub("filled.jsonl")]);
        output.WriteLine(filled.Stderr);
        Assert.True(filled.ExitCode == 0, filled.Stderr);
        Assert.Contains("10 of 10 rows had no negative left (input lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10): the score filters dropped", filled.Stderr);
        Assert.Contains("--on-empty fill: filled 10 rows with 70 random pool texts", filled.Stderr);
        var rows = File.ReadAllLines(folder.Sub("filled.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(10, rows.Count);
        Assert.All(rows, r => Assert.Equal(7, r["neg"]!.AsArray().Select(n => n!.GetValue<string>()).Distinct().Count()));

        var dropped = M3TrainProcess.Run([.. common, "--output", folder.Sub("dropped.jsonl"), "--on-empty", "drop"]);
        output.WriteLine(dropped.Stderr);
        Assert.Equal(2, dropped.ExitCode);
        Assert.Contains("no row has a negative left, so there is nothing to write", dropped.Stderr);
        Assert.False(File.Exists(folder.Sub("dropped.jsonl")));

        var unknown = M3TrainProcess.Run([.. common, "--output", folder.Sub("x.jsonl"), "--on-empty", "skip"]);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("skip", unknown.Stderr);
    }
}
