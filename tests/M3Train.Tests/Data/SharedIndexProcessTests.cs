using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using M3Train.Tests.Distributed;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>
/// Two ranks launched on one machine (<c>m3train launch -- bench --mode data</c>) index the same data into one shared
/// folder: each part of the index is built by one of them, both map all of it, and both plan the same batches.
/// </summary>
[Trait("Category", "Slow")]
public sealed partial class SharedIndexProcessTests(ITestOutputHelper output) : IDisposable
{
    readonly DataTestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [GeneratedRegex(@"^\d\d:\d\d:\d\d [A-Z]{3} ")]
    private static partial Regex LogLine();

    /// <summary>The JSON report a rank printed, from its log (log lines of the rank's own interleaved with it are left out).</summary>
    static JsonNode Report(string log)
    {
        var lines = File.ReadAllLines(log).Where(l => !LogLine().IsMatch(l)).ToList();
        int start = lines.IndexOf("{"), end = lines.LastIndexOf("}");
        Assert.True(start >= 0 && end > start, $"no report in {log}:\n{string.Join('\n', lines)}");
        return JsonNode.Parse(string.Join('\n', lines[start..(end + 1)]))!;
    }

    [Fact]
    public void TwoRanksBuildEachPartOnceMapTheWholeIndexAndPlanAlike()
    {
        const int files = 6;
        for (int f = 0; f < files; f++)
            _folder.Write($"data/part-{f}.jsonl", string.Join("\n", Enumerable.Range(0, 3000).Select(i =>
                $$"""{"query": "query {{f}}/{{i}} about rivers", "pos": ["a passage on rivers number {{i}} and stones"], "neg": ["unrelated text {{i * 7}}"]}""")));
        string index = Path.Combine(_folder.Path, "index"), logs = Path.Combine(_folder.Path, "logs");
        using var launch = new M3TrainRun(new Dictionary<string, string>(), "launch", "--nproc-per-node", "2", "--log-dir", logs, "--",
            "bench", "--mode", "data", "--preset", "tiny", "--queries", "4", "--group", "2", "--query-length", "32", "--passage-length", "64",
            "--steps", "1", "--warmup", "0", "--threads", "1", "--tokenizer", Path.Combine(DataTestFolder.RepoRoot, "data", "models", "tiny-m3"),
            "--data", Path.Combine(_folder.Path, "data"), "--index-dir", index);
        Assert.True(launch.WaitForExit(TimeSpan.FromSeconds(300)) == 0, launch.Output);
        var reports = Enumerable.Range(0, 2).Select(r => Report(Path.Combine(logs, $"rank-{r}.log"))["result"]!).ToArray();
        int[] built = [.. reports.Select(r => r["index"]!["parts_built_here"]!.GetValue<int>())];
        output.WriteLine($"parts built by rank 0: {built[0]}, by rank 1: {built[1]}");
        Assert.All(reports, r => Assert.Equal(files, r["index"]!["parts"]!.GetValue<int>()));
        Assert.Equal(files, built.Sum());
        Assert.Equal([0, 1], reports.Select(r => r["rank"]!.GetValue<int>()));
        Assert.All(reports, r => Assert.Equal(2, r["world_size"]!.GetValue<int>()));
        foreach (string key in new[] { "signature", "digest", "steps_per_epoch" })
            Assert.Equal(reports[0]["plan"]![key]!.ToJsonString(), reports[1]["plan"]![key]!.ToJsonString());
        Assert.Equal(files, Directory.GetFiles(index, "*.rows").Length);
        Assert.DoesNotContain(Directory.GetFiles(index), f => !f.EndsWith(".rows", StringComparison.Ordinal));
    }
}
