using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using M3Train.Distributed;
using M3Train.Model;
using M3Train.Training.Benchmarks;
using Serilog;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train bench</c>: training-step, encoding, tokenizer or data-loader throughput of one configuration,
/// as a JSON report on stdout (and in <c>--output</c>) for comparison tables; see <see cref="BenchRunner"/>.
/// <c>--nproc N</c> compares the training step on N data-parallel ranks with one rank (<see cref="BenchScaling"/>).
/// </summary>
public static class BenchCommand
{
    static readonly Option<string> ModeOption = new Option<string>("--mode")
    {
        Description = "step: training steps on random tokens; encode: inference encoding; tokenize: tokenizer on real text; data: the data loader on real data.",
        DefaultValueFactory = _ => "step",
    }.AcceptOnlyFromAmong("step", "encode", "tokenize", "data");

    static readonly Option<string> PresetOption = new Option<string>("--preset")
    {
        Description = "Model shape, random weights: bge-m3 (large, 8192 tokens), large, base or tiny.",
        DefaultValueFactory = _ => "base",
    }.AcceptOnlyFromAmong([.. BenchPresets.Names]);

    static readonly Option<int> QueriesOption = new("--queries") { Description = "B, queries per step.", DefaultValueFactory = _ => 8 };
    static readonly Option<int> GroupOption = new("--group") { Description = "G, passages per query (1 positive, G-1 negatives).", DefaultValueFactory = _ => 8 };
    static readonly Option<int?> QueryLengthOption = new("--query-length") { Description = "Lq, tokens per query (maximum for --mode data); default 64, or what the preset's positions hold if fewer." };
    static readonly Option<int?> PassageLengthOption = new("--passage-length") { Description = "Lp, tokens per passage (maximum for --mode data); default 512, or what the preset's positions hold if fewer (tiny: 128)." };
    static readonly Option<int> StepsOption = new("--steps") { Description = "Timed steps (tokenize: timed rounds, the best is reported; data: 0 measures the data path without training steps).", DefaultValueFactory = _ => 10 };
    static readonly Option<int> WarmupOption = new("--warmup") { Description = "Untimed steps first.", DefaultValueFactory = _ => 3 };

    static readonly Option<string> PrecisionOption = new Option<string>("--precision")
    {
        Description = "Matmul precision: bf16, fp16 or fp32; auto is bf16 on CUDA, fp32 on CPU.",
        DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong("auto", "bf16", "fp16", "fp32");

    static readonly Option<string> CheckpointingOption = new Option<string>("--checkpointing")
    {
        Description = "Activation checkpointing (recompute each layer in backward).",
        DefaultValueFactory = _ => "on",
    }.AcceptOnlyFromAmong("on", "off");

    static readonly Option<int?> SubBatchOption = new("--sub-batch") { Description = "GradCache sub-batch size in texts (default: the whole batch at once)." };
    static readonly Option<string> DeviceOption = CommonOptions.Device();
    static readonly Option<int?> ThreadsOption = new("--threads")
    {
        Description = "libtorch intra-op threads (default: the cores less one for the inter-op pool and one for --mode data's loader, at least 1); tokenize: tokenizer threads, default 1.",
    };
    static readonly Option<string> TokenizerOption = new("--tokenizer") { Description = "Tokenizer folder for tokenize and data.", DefaultValueFactory = _ => "data/models/tiny-m3" };

    static readonly Option<string[]> DataOption = new("--data")
    {
        Description = "Training data files or folders for tokenize and data (repeatable).",
        DefaultValueFactory = _ => ["data/train"],
        AllowMultipleArgumentsPerToken = false,
    };

    static readonly Option<string?> IndexDirOption = new("--index-dir")
    {
        Description = "Data: keep the row index in this folder (ranks of a launch share it); default a temporary folder, removed at the end.",
    };

    static readonly Option<long> PlanRowsOption = new("--plan-rows") { Description = "Data: also plan over a synthesized index of this many rows.", DefaultValueFactory = _ => 0 };
    static readonly Option<int> SeedOption = new("--seed") { Description = "Seed of the weights and the random tokens.", DefaultValueFactory = _ => 0 };
    static readonly Option<int> ProcessesOption = new("--nproc")
    {
        Description = "Compare the step on N data-parallel ranks (processes, each with the same batch and --threads, default 1) with one rank: scaling efficiency and all-reduce time.",
        DefaultValueFactory = _ => 1,
    };

    static readonly Option<string> OverlapOption = new Option<string>("--overlap")
    {
        Description = "On several ranks, start gradient all-reduces during backward as layers finish (off: all after backward).",
        DefaultValueFactory = _ => "on",
    }.AcceptOnlyFromAmong("on", "off");

    static readonly Option<FileInfo> OutputOption = PathOptions.Output("--output", "Also write the JSON report to this file.", required: false);

    public static Command Create()
    {
        var command = new Command("bench", "Measure training-step, encoding, tokenizer or data-loader throughput and memory; prints a JSON report.")
        {
            ModeOption, PresetOption, QueriesOption, GroupOption, QueryLengthOption, PassageLengthOption, StepsOption, WarmupOption,
            PrecisionOption, CheckpointingOption, SubBatchOption, DeviceOption, ThreadsOption, TokenizerOption, DataOption, IndexDirOption,
            PlanRowsOption, SeedOption, ProcessesOption, OverlapOption, OutputOption,
        };
        command.SetAction(parseResult => Run(new BenchSettings
        {
            Mode = Enum.Parse<BenchMode>(parseResult.GetValue(ModeOption)!, ignoreCase: true),
            Preset = parseResult.GetValue(PresetOption)!,
            Queries = parseResult.GetValue(QueriesOption),
            Group = parseResult.GetValue(GroupOption),
            QueryLength = parseResult.GetValue(QueryLengthOption),
            PassageLength = parseResult.GetValue(PassageLengthOption),
            Steps = parseResult.GetValue(StepsOption),
            Warmup = parseResult.GetValue(WarmupOption),
            Precision = parseResult.GetValue(PrecisionOption) is "auto" ? null : ModelOptions.Compute(parseResult.GetValue(PrecisionOption)!),
            Checkpointing = parseResult.GetValue(CheckpointingOption) == "on",
            SubBatch = parseResult.GetValue(SubBatchOption),
            Device = parseResult.GetValue(DeviceOption)!,
            Threads = parseResult.GetValue(ThreadsOption),
            Tokenizer = parseResult.GetValue(TokenizerOption)!,
            Data = parseResult.GetValue(DataOption)!,
            IndexDir = parseResult.GetValue(IndexDirOption),
            PlanRows = parseResult.GetValue(PlanRowsOption),
            Seed = parseResult.GetValue(SeedOption),
            Processes = parseResult.GetValue(ProcessesOption),
            Overlap = parseResult.GetValue(OverlapOption) == "on",
        }, parseResult.GetValue(OutputOption)));
        return command;
    }

    static int Run(BenchSettings settings, FileInfo? output)
    {
        if (settings.Processes > 1) return Scaling(settings, output);
        var report = BenchRunner.Run(settings);
        // The ranks of a data-parallel step benchmark measure together and rank 0 reports; those of the data benchmark
        // each measure their own slice and each print it (rank 0 alone writes --output).
        bool main = LaunchEnvironment.FromProcess().Rank == 0;
        if (!main && settings.Mode == BenchMode.Step) return 0;
        string json = report.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Console.Out.WriteLine(json);
        if (output is not null && main) VerbOutput.WriteAllText("--output", output, json + "\n");
        Log.Information("bench {Mode} {Preset}: {Summary}", settings.Mode.ToString().ToLowerInvariant(), settings.Preset, Summary(report));
        return 0;
    }

    static int Scaling(BenchSettings settings, FileInfo? output)
    {
        string folder = Path.Combine(output?.DirectoryName ?? Path.Combine("runs", "bench"),
            $"nproc-{settings.Processes}-{settings.Preset}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
        var report = BenchScaling.Run(settings, (processes, arguments, logs) => RankProcesses.Run(processes, arguments, logs), folder);
        string json = report.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Console.Out.WriteLine(json);
        if (output is not null) VerbOutput.WriteAllText("--output", output, json + "\n");
        Log.Information("bench --nproc {N} {Preset}: scaling efficiency {Efficiency:P1} ({Speedup:F2}x one rank), all-reduce {Reduce:F4} s per step " +
                        "({Exposed:F4} s of it not hidden by backward), load average {Load}; runs in {Folder}",
            settings.Processes, settings.Preset, report["scaling_efficiency"]!.GetValue<double>(), report["speedup"]!.GetValue<double>(),
            report["allreduce_seconds_per_step"]!.GetValue<double>(), report["allreduce_exposed_seconds_per_step"]!.GetValue<double>(),
            report["load_average"]!["before"]?.ToJsonString(), folder);
        return 0;
    }

    static string Summary(System.Text.Json.Nodes.JsonObject report)
    {
        var result = report["result"]!;
        var parts = new List<string>();
        if (result["index"] is { } index)
            parts.Add($"index {index["bytes_per_row"]!.GetValue<double>().ToString("F1", CultureInfo.InvariantCulture)} bytes/row, " +
                      $"{index["rows_per_cpu_second"]!.GetValue<double>().ToString("N0", CultureInfo.InvariantCulture)} rows per CPU-second");
        if (result["loader"]?["batches_per_second"] is { } loader)
            parts.Add($"loader alone {loader.GetValue<double>().ToString("N1", CultureInfo.InvariantCulture)} batches/s");
        if (result["steps"] is { } steps)
        {
            result = steps;
            if (steps["loader_wait_fraction"] is { } wait)
                parts.Add($"steps wait {(wait.GetValue<double>() * 100).ToString("F1", CultureInfo.InvariantCulture)}% of their time for batches");
        }
        if (result["step_seconds"]?["mean"] is { } step) parts.Add($"step {step.GetValue<double>().ToString("F4", CultureInfo.InvariantCulture)} s");
        if (result["batch_seconds"]?["mean"] is { } batch) parts.Add($"batch {batch.GetValue<double>().ToString("F4", CultureInfo.InvariantCulture)} s");
        if (result["tokens_per_second"] is { } tps) parts.Add($"{tps.GetValue<double>().ToString("N0", CultureInfo.InvariantCulture)} tokens/s");
        if (result["memory"]?["device_peak_gib"] is { } peak) parts.Add($"peak {peak.GetValue<double>().ToString("F2", CultureInfo.InvariantCulture)} GiB");
        if (report["anchor"]?["tokens_per_second_ratio"] is { } ratio)
            parts.Add($"{ratio.GetValue<double>().ToString("F2", CultureInfo.InvariantCulture)}x FlagEmbedding's tokens/s (H200 anchor)");
        return parts.Count > 0 ? string.Join(", ", parts) : "done";
    }
}
