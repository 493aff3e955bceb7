using System.Text.Json.Nodes;
using M3Train.Tests.Distributed;
using M3Train.Tests.Export;
using M3Train.Training.Benchmarks;
using Xunit;

namespace M3Train.Tests.Training.Benchmarks;

public class BenchScalingTests
{
    [Fact]
    public void EachRankRunsTheSameStepBenchmarkWithOneThreadUnlessToldOtherwise()
    {
        var s = new BenchSettings { Preset = "tiny", Queries = 3, Group = 2, QueryLength = 16, PassageLength = 32, Steps = 4, Warmup = 1, SubBatch = 2, Processes = 2 };
        var arguments = BenchScaling.RankArguments(s, overlap: false, "out.json");
        string Value(string option, IReadOnlyList<string>? of = null) => (of ?? arguments)[(of ?? arguments).ToList().IndexOf(option) + 1];
        Assert.Equal("bench", arguments[0]);
        Assert.Equal("step", Value("--mode"));
        Assert.Equal("tiny", Value("--preset"));
        Assert.Equal("3", Value("--queries"));
        Assert.Equal("2", Value("--sub-batch"));
        Assert.Equal("1", Value("--threads"));
        Assert.Equal("off", Value("--overlap"));
        Assert.Equal("out.json", Value("--output"));
        Assert.DoesNotContain("--nproc", arguments);
        Assert.Equal("2", Value("--threads", BenchScaling.RankArguments(s with { Threads = 2 }, overlap: true, "x")));
    }

    [Fact]
    public void OnlyTheStepModeComparesRanks()
    {
        var e = Assert.Throws<M3TrainException>(() => BenchScaling.Run(new BenchSettings { Mode = BenchMode.Encode, Processes = 2 }, (_, _, _) => 0, "unused"));
        Assert.Contains("--mode step", e.Message);
    }

    [Trait("Category", "Slow")]
    [Fact]
    public void TwoRanksAreComparedWithOneAndTheAllReduceTimeIsReported()
    {
        using var folder = new TempFolder();
        string output = folder.Sub("bench/scaling.json");
        using var bench = new M3TrainRun(new Dictionary<string, string>(), "bench", "--nproc", "2", "--preset", "tiny", "--queries", "2", "--group", "2",
            "--query-length", "16", "--passage-length", "32", "--steps", "3", "--warmup", "1", "--output", output);
        Assert.True(bench.WaitForExit(TimeSpan.FromMinutes(3)) == 0, bench.Output);
        var report = JsonNode.Parse(File.ReadAllText(output))!;
        Assert.Equal(BenchScaling.Schema, report["schema"]!.GetValue<string>());
        Assert.Equal(2, report["ranks"]!.GetValue<int>());
        Assert.Equal(1, report["single"]!["world_size"]!.GetValue<int>());
        Assert.Equal(2, report["parallel"]!["world_size"]!.GetValue<int>());
        Assert.Equal("tcp-ring", report["parallel"]!["data_parallel"]!["backend"]!.GetValue<string>());
        Assert.True(report["parallel_no_overlap"]!["data_parallel"]!["buckets_started_during_backward"]!.GetValue<int>() == 0);
        // N ranks each with the batch of one: the world's throughput is N times a rank's.
        var parallel = report["parallel"]!;
        Assert.Equal(2 * parallel["tokens_per_second_per_rank"]!.GetValue<double>(), parallel["world_tokens_per_second"]!.GetValue<double>(), 6);
        foreach (string key in new[] { "scaling_efficiency", "speedup", "allreduce_seconds_per_step", "allreduce_exposed_seconds_per_step" })
            Assert.True(report[key]!.GetValue<double>() > 0, $"{key} should be positive");
        Assert.Equal(3, report["load_average"]!["before"]!.AsArray().Count);
        Assert.Contains("scaling efficiency", bench.Output);
    }
}
