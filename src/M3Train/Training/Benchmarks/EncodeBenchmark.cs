using System.Text.Json.Nodes;
using M3Train.Model;
using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// Inference throughput: <see cref="M3Model.Encode"/> in eval mode without a graph, of the B queries and B·G
/// passages of a random-token batch per iteration (host ids to the device included). Timed like
/// <see cref="StepBenchmark"/>: one device sync after the last iteration.
/// </summary>
public static class EncodeBenchmark
{
    public static JsonObject Run(BenchSettings s, Device device, ComputePrecision precision, JsonObject report)
    {
        var config = BenchPresets.Config(s.Preset);
        using var model = BenchModel.Create(config, s, device, precision);
        report["model"] = BenchModel.Describe(config, model);
        model.eval();
        var random = new Random(s.Seed);
        var batch = RandomTokenBatch.Create(s.Queries, s.Group, s.QueryTokens, s.PassageTokens, config.VocabSize, random);
        using var noGrad = no_grad();

        void EncodeBatch()
        {
            using var scope = NewDisposeScope();
            foreach (var texts in new[] { batch.Queries, batch.Passages! })
            {
                var (ids, mask) = texts.ToTensors(device);
                model.Encode(ids, mask, hasPadding: texts.HasPadding()).Dispose();
            }
        }

        var clock = new DeviceClock(device);
        for (int i = 0; i < s.Warmup; i++) EncodeBatch();
        clock.Synchronize();
        using var memory = new BenchMemory(device);
        var marks = new double[s.Steps + 1];
        double cpuStart = DeviceClock.ProcessCpuSeconds();
        marks[0] = clock.Now;
        for (int i = 0; i < s.Steps; i++)
        {
            EncodeBatch();
            marks[i + 1] = clock.Now;
        }
        marks[s.Steps] = clock.SynchronizedNow();
        double cpuPerBatch = (DeviceClock.ProcessCpuSeconds() - cpuStart) / s.Steps;
        double mean = (marks[^1] - marks[0]) / s.Steps;
        var stats = TimingStats.Of(Enumerable.Range(0, s.Steps).Select(i => marks[i + 1] - marks[i]).ToArray()) with { Mean = mean };
        return new JsonObject
        {
            ["batch_seconds"] = StepBenchmark.Json(stats),
            ["tokens_per_batch"] = s.TokensPerStep,
            ["texts_per_batch"] = s.TextsPerStep,
            ["tokens_per_second"] = s.TokensPerStep / mean,
            ["texts_per_second"] = s.TextsPerStep / mean,
            ["process_cpu_seconds_per_batch"] = cpuPerBatch,
            ["memory"] = memory.Report(),
        };
    }
}
