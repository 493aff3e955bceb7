using System.Globalization;
using System.Text.Json.Nodes;
using M3Train.DataParallel;
using M3Train.Distributed;
using M3Train.Model;
using M3Train.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// Runs one <c>m3train bench</c> configuration and returns its report: <c>settings</c> (everything that was
/// asked, precision resolved), <c>machine</c>, <c>model</c>, <c>result</c> (per mode) and, when the configuration
/// is one of issue 10's, <c>anchor</c>: the FlagEmbedding row measured on an H200 and this run's ratios to it.
/// A process started as a rank of a job (<c>m3train launch</c>, or <c>bench --nproc</c>) runs the step benchmark
/// data-parallel with the other ranks: every rank its own batch, gradients averaged (<see cref="BenchScaling"/>).
/// </summary>
public static class BenchRunner
{
    public const string Schema = "m3train-bench/1";

    public static JsonObject Run(BenchSettings s)
    {
        Validate(s);
        var launch = LaunchEnvironment.FromProcess();
        if (launch.IsDistributed && s.Mode is BenchMode.Encode or BenchMode.Tokenize)
            throw new M3TrainException($"bench --mode {s.Mode.ToString().ToLowerInvariant()} runs in one process; only --mode step (the ranks averaging " +
                                       "their gradients) and --mode data (each rank its own slice of the data) run as several ranks.");
        int? threads = s.Mode == BenchMode.Tokenize ? s.Threads
            : ComputeThreads.Apply(s.Threads, hostThreads: s.Mode == BenchMode.Data ? 1 : 0, "--threads", ranksOnMachine: launch.RanksSharingCores);
        var device = s.Mode == BenchMode.Tokenize ? CPU : DistributedContext.DeviceFor(s.Device, launch);
        // The data benchmark's ranks each measure their own slice, alone: only the step benchmark's join a job.
        if (!launch.IsDistributed || s.Mode != BenchMode.Step) return Report(s, device, threads, DataParallelGroup.Alone(device));
        using var job = DistributedContext.Start(launch, device);
        try
        {
            var report = Report(s, device, threads, new DataParallelGroup(job.Collectives, job.Device));
            job.Finish();
            return report;
        }
        catch (Exception e)
        {
            job.Fail(e);
            throw;
        }
    }

    static JsonObject Report(BenchSettings s, Device device, int? threads, DataParallelGroup group)
    {
        var precision = s.Precision ?? (device.type == DeviceType.CUDA ? ComputePrecision.BFloat16 : ComputePrecision.Float32);
        var report = new JsonObject
        {
            ["schema"] = Schema,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            ["settings"] = Describe(s, precision, threads),
            ["machine"] = BenchMachine.Describe(device),
        };
        report["result"] = s.Mode switch
        {
            BenchMode.Step => StepBenchmark.Run(s, group, precision, report),
            BenchMode.Encode => EncodeBenchmark.Run(s, device, precision, report),
            BenchMode.Data => DataBenchmark.Run(s, device, precision, report),
            _ => BenchText.RunTokenize(s),
        };
        if (FlagEmbeddingAnchor.Match(s, precision) is { } anchor) report["anchor"] = CompareWith(anchor, report["result"]!.AsObject());
        return report;
    }

    static void Validate(BenchSettings s)
    {
        void Positive(int value, string option)
        {
            if (value < 1) throw new M3TrainException($"{option} must be at least 1, got {value}.");
        }
        Positive(s.Queries, "--queries");
        Positive(s.Group, "--group");
        if (s.Mode != BenchMode.Data) Positive(s.Steps, "--steps");
        else if (s.Steps < 0) throw new M3TrainException($"--steps must be 0 or more with --mode data, got {s.Steps}.");
        if (s.Warmup < 0) throw new M3TrainException($"--warmup must be 0 or more, got {s.Warmup}.");
        if (s.QueryTokens < 2) throw new M3TrainException($"--query-length must be at least 2 (<s> and </s>), got {s.QueryTokens}.");
        if (s.PassageTokens < 2) throw new M3TrainException($"--passage-length must be at least 2 (<s> and </s>), got {s.PassageTokens}.");
        if (s.SubBatch is int sub) Positive(sub, "--sub-batch");
        if (s.Threads is int threads) Positive(threads, "--threads");
        if (s.PlanRows is < 0 or > int.MaxValue) throw new M3TrainException($"--plan-rows must be 0 to {int.MaxValue}, got {s.PlanRows}.");
        Positive(s.Processes, "--nproc");
    }

    static JsonObject Describe(BenchSettings s, ComputePrecision precision, int? threads) => new()
    {
        ["mode"] = s.Mode.ToString().ToLowerInvariant(),
        ["preset"] = s.Preset,
        ["queries"] = s.Queries,
        ["group"] = s.Group,
        ["query_length"] = s.QueryTokens,
        ["passage_length"] = s.PassageTokens,
        ["steps"] = s.Steps,
        ["warmup"] = s.Warmup,
        ["precision"] = precision switch { ComputePrecision.BFloat16 => "bf16", ComputePrecision.Float16 => "fp16", _ => "fp32" },
        ["checkpointing"] = s.Checkpointing,
        ["sub_batch"] = s.SubBatch,
        ["device"] = s.Device,
        ["threads"] = threads,
        ["seed"] = s.Seed,
        ["tokenizer"] = s.Mode is BenchMode.Tokenize or BenchMode.Data ? s.Tokenizer : null,
        ["data"] = s.Mode is BenchMode.Tokenize or BenchMode.Data ? new JsonArray([.. s.Data.Select(d => (JsonNode)d)]) : null,
        ["index_dir"] = s.Mode == BenchMode.Data ? s.IndexDir : null,
        ["plan_rows"] = s.Mode == BenchMode.Data ? s.PlanRows : null,
        ["tokens_per_step"] = s.TokensPerStep,
        ["overlap"] = s.Overlap,
    };

    static JsonObject CompareWith(FlagEmbeddingAnchor anchor, JsonObject result)
    {
        double tokensPerSecond = result["tokens_per_second"]!.GetValue<double>();
        double? peakGiB = result["memory"]?["device_peak_gib"]?.GetValue<double>();
        double speed = tokensPerSecond / anchor.TokensPerSecond;
        double? memory = peakGiB / anchor.PeakGiB;
        return new JsonObject
        {
            ["source"] = FlagEmbeddingAnchor.Source,
            ["anchor_device"] = "NVIDIA H200",
            ["step_seconds"] = anchor.StepSeconds,
            ["tokens_per_second"] = anchor.TokensPerSecond,
            ["peak_gib"] = anchor.PeakGiB,
            ["tokens_per_second_ratio"] = speed,
            ["peak_memory_ratio"] = memory,
            ["goal_tokens_per_second_ratio"] = FlagEmbeddingAnchor.TokensPerSecondGoal,
            ["goal_peak_memory_ratio"] = FlagEmbeddingAnchor.PeakMemoryGoal,
            ["goal_met"] = speed >= FlagEmbeddingAnchor.TokensPerSecondGoal && memory <= FlagEmbeddingAnchor.PeakMemoryGoal,
        };
    }
}
