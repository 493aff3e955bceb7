using System.Diagnostics;
using System.Text.Json.Nodes;
using M3Train.Model;
using M3Train.Tests.Export;
using M3Train.Training.Benchmarks;
using Xunit;

namespace M3Train.Tests.Training.Benchmarks;

/// <summary>The bench on the tiny preset, 2 steps on the CPU: every reported figure is there and positive.</summary>
[Collection(HostMemoryCollection.Name)]
public class BenchSmokeTests
{
    static readonly BenchSettings Tiny = new()
    {
        Preset = "tiny", Queries = 2, Group = 2, QueryLength = 16, PassageLength = 32, Steps = 2, Warmup = 1, Threads = 1,
    };

    internal static double Number(JsonNode? node, string path)
    {
        foreach (string key in path.Split('.')) node = node?[key];
        Assert.True(node is not null, $"{path} is missing");
        return double.Parse(node!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void StepReportHasTimingsThroughputPhasesAndMemory()
    {
        var report = BenchRunner.Run(Tiny);

        foreach (string path in new[]
        {
            "result.step_seconds.mean", "result.step_seconds.p50", "result.step_seconds.p90", "result.tokens_per_second",
            "result.texts_per_second", "result.phases.forward_seconds", "result.phases.backward_seconds",
            "result.phases.optimizer_seconds", "result.memory.device_peak_bytes", "result.memory.host_rss_bytes",
            "result.memory.host_peak_rss_bytes", "result.process_cpu_seconds_per_step", "model.parameters",
            "machine.cores", "machine.intra_op_threads",
        })
            Assert.True(Number(report, path) > 0, $"{path} should be positive");
        Assert.Equal(2 * (16 + 2 * 32), Number(report, "result.tokens_per_step"));
        Assert.True(double.IsFinite(Number(report, "result.last_loss")));
        Assert.Equal("step", report["settings"]!["mode"]!.GetValue<string>());
        Assert.Equal("fp32", report["settings"]!["precision"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(report["machine"]!["libtorch"]!.GetValue<string>()));
        Assert.False(string.IsNullOrEmpty(report["machine"]!["device_name"]!.GetValue<string>()));
        Assert.Null(report["anchor"]);
    }

    [Fact]
    public void EncodeAndSubBatchedStepReportThroughput()
    {
        var encode = BenchRunner.Run(Tiny with { Mode = BenchMode.Encode });
        Assert.True(Number(encode, "result.batch_seconds.mean") > 0);
        Assert.True(Number(encode, "result.tokens_per_second") > 0);

        var gradCache = BenchRunner.Run(Tiny with { SubBatch = 1, Checkpointing = false });
        Assert.True(Number(gradCache, "result.tokens_per_second") > 0);
        Assert.Equal(1, Number(gradCache, "settings.sub_batch"));
    }

    [Fact]
    public void AnchorsMatchOnlyTheirOwnConfigurationAndAgreeWithTheirTokenCounts()
    {
        foreach (var a in FlagEmbeddingAnchor.Table)
        {
            var s = new BenchSettings { Preset = "bge-m3", Queries = a.Queries, Group = a.Group, QueryLength = a.QueryLength, PassageLength = a.PassageLength };
            Assert.Same(a, FlagEmbeddingAnchor.Match(s, ComputePrecision.BFloat16));
            Assert.Null(FlagEmbeddingAnchor.Match(s, ComputePrecision.Float32));
            Assert.Same(a, FlagEmbeddingAnchor.Match(s with { Checkpointing = false, SubBatch = 4 }, ComputePrecision.BFloat16));
            Assert.Null(FlagEmbeddingAnchor.Match(s with { Mode = BenchMode.Encode }, ComputePrecision.BFloat16));
            Assert.Null(FlagEmbeddingAnchor.Match(s with { Queries = a.Queries + 1 }, ComputePrecision.BFloat16));
            Assert.Null(FlagEmbeddingAnchor.Match(s with { Preset = "large" }, ComputePrecision.BFloat16));
            // The table's tokens/s is B·(Lq + G·Lp) over its step time, to the rounding of both.
            Assert.InRange(s.TokensPerStep / a.StepSeconds / a.TokensPerSecond, 0.97, 1.03);
        }
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task CommandPrintsTheReportAndWritesTheOutputFile()
    {
        using var folder = new TempFolder();
        string output = folder.Sub("bench/tiny.json");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "m3train.dll"), "bench", "--preset", "tiny", "--queries", "1", "--group", "2",
            "--query-length", "8", "--passage-length", "16", "--steps", "1", "--warmup", "0", "--threads", "1", "--output", output,
        })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var cancel = TestContext.Current.CancellationToken;
        var stdout = process.StandardOutput.ReadToEndAsync(cancel);
        var stderr = process.StandardError.ReadToEndAsync(cancel);
        await process.WaitForExitAsync(cancel);

        Assert.True(process.ExitCode == 0, await stderr);
        var printed = JsonNode.Parse(await stdout)!;
        var written = JsonNode.Parse(await File.ReadAllTextAsync(output, cancel))!;
        Assert.Equal(BenchRunner.Schema, printed["schema"]!.GetValue<string>());
        Assert.Equal(Number(printed, "result.tokens_per_second"), Number(written, "result.tokens_per_second"));
    }

    [Fact]
    public void EachPresetsDefaultLengthsFitItsPositions()
    {
        Assert.Equal((64, 128), (new BenchSettings { Preset = "tiny" }.QueryTokens, new BenchSettings { Preset = "tiny" }.PassageTokens));
        Assert.Equal((64, 512), (new BenchSettings { Preset = "bge-m3" }.QueryTokens, new BenchSettings { Preset = "bge-m3" }.PassageTokens));
        Assert.Equal(100, new BenchSettings { Preset = "tiny", PassageLength = 100 }.PassageTokens);
    }

    [Fact]
    public void TheTinyPresetRunsWithTheBenchsOwnDefaults()
    {
        var report = BenchRunner.Run(new BenchSettings { Preset = "tiny", Steps = 1, Warmup = 0 });
        Assert.Equal(128, Number(report, "settings.passage_length"));
        Assert.Equal(64, Number(report, "settings.query_length"));
        Assert.Equal(ComputeThreadsDefault(), Number(report, "settings.threads"));
        Assert.True(Number(report, "result.tokens_per_second") > 0);
    }

    static int ComputeThreadsDefault() => M3Train.Runtime.ComputeThreads.Default(hostThreads: 0);

    [Fact]
    public void TooLongTextsForThePresetAreAUserError()
    {
        var e = Assert.Throws<M3TrainException>(() => BenchRunner.Run(Tiny with { PassageLength = 4096 }));
        Assert.Contains("--preset tiny", e.Message);
    }
}
