using System.Text.Json.Nodes;
using M3Train.Tests.Data;
using M3Train.Training.Benchmarks;
using Xunit;

namespace M3Train.Tests.Training.Benchmarks;

/// <summary><c>m3train bench --mode data</c> on the shipped sample data: the index, plan, loader and GPU figures are there and add up.</summary>
[Collection(HostMemoryCollection.Name)]
public class DataBenchmarkTests
{
    static double Number(JsonNode report, string path) => BenchSmokeTests.Number(report, path);

    [Fact]
    public void DataReportHasIndexPlanLoaderAndScaleFigures()
    {
        var report = BenchRunner.Run(new BenchSettings
        {
            Mode = BenchMode.Data, Preset = "tiny", Queries = 2, Group = 2, QueryLength = 32, PassageLength = 64, Steps = 2, Warmup = 1, Threads = 1,
            Tokenizer = Path.Combine(DataTestFolder.RepoRoot, "data", "models", "tiny-m3"), Data = [Path.Combine(DataTestFolder.RepoRoot, "data", "train")], PlanRows = 200_000,
        });
        var result = report["result"]!;
        int files = result["files"]!.AsArray().Count;
        Assert.Equal(files, Number(result, "index.parts"));
        Assert.Equal(files, Number(result, "index.parts_built_here"));
        // 12 bytes a row, and under a kilobyte a part for its summary, footer and checksum.
        Assert.InRange(Number(result, "index.bytes") - 12 * Number(result, "rows"), 1, 1024 * files);
        Assert.Equal(Number(result, "index.bytes") / Number(result, "rows"), Number(result, "index.bytes_per_row"), 6);
        foreach (string path in new[] { "index.rows_per_second", "index.rows_per_cpu_second", "index.open_seconds", "plan.steps_per_epoch",
                     "loader.rows_per_second", "loader.padded_tokens_per_second", "gpu.loader_to_gpu_ratio", "steps.step_seconds.mean" })
            Assert.True(Number(result, path) > 0, $"{path} should be positive");
        Assert.False(result["plan"]!["permuted"]!.GetValue<bool>());
        Assert.True(result["plan_at_scale"]!["permuted"]!.GetValue<bool>());
        Assert.Equal(200_000, Number(result, "plan_at_scale.rows"));
        Assert.True(Number(result, "plan_at_scale.directory_bytes") > 0);
        Assert.True(Number(result, "plan_at_scale.rank_slice_seconds") > 0);
        Assert.Equal(Number(result, "gpu.gpu_tokens_per_second") * Number(result, "gpu.loader_to_gpu_ratio"), Number(result, "loader.padded_tokens_per_second"), 6);
    }

    [Fact]
    public void ZeroStepsMeasuresTheDataPathWithoutAModel()
    {
        var settings = new BenchSettings
        {
            Mode = BenchMode.Data, Preset = "tiny", Queries = 2, Group = 2, QueryLength = 32, PassageLength = 64, Steps = 0, Threads = 1,
            Tokenizer = Path.Combine(DataTestFolder.RepoRoot, "data", "models", "tiny-m3"), Data = [Path.Combine(DataTestFolder.RepoRoot, "data", "train")],
        };
        var report = BenchRunner.Run(settings);
        var result = report["result"]!;
        Assert.True(Number(result, "loader.rows_per_second") > 0);
        Assert.Null(result["steps"]);
        Assert.Null(report["model"]);

        var e = Assert.Throws<M3TrainException>(() => BenchRunner.Run(settings with { Mode = BenchMode.Step }));
        Assert.Contains("--steps must be at least 1", e.Message);
    }
}
