using System.Globalization;
using System.Text.Json.Nodes;
using M3Train.Model;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// <c>m3train bench --nproc N</c>: the step benchmark as one rank and as N ranks on this machine, each rank a process with
/// the same per-rank batch and threads (1 unless <c>--threads</c> says otherwise), the N-rank run twice: with gradient
/// all-reduces started during backward and with all of them after it. The report compares them: scaling efficiency
/// (N ranks' throughput over N times one rank's, 1.0 being perfect), the time averaging the gradients blocks a step
/// (all of the all-reduce without overlap, what backward did not hide with it), and the machine's load average around
/// the runs, which a shared machine's figures need beside them.
/// </summary>
public static class BenchScaling
{
    public const string Schema = "m3train-bench-scaling/1";

    /// <summary>Runs <paramref name="arguments"/> (an m3train command line) as this many ranks; returns the exit code.</summary>
    public delegate int RankRunner(int processes, IReadOnlyList<string> arguments, string logDirectory);

    /// <param name="s">The benchmark; <see cref="BenchSettings.Processes"/> is N.</param>
    /// <param name="runRanks">Starts ranks of this m3train (the CLI's launcher).</param>
    /// <param name="folder">Where the runs' reports and logs go.</param>
    public static JsonObject Run(BenchSettings s, RankRunner runRanks, string folder)
    {
        if (s.Mode != BenchMode.Step) throw new M3TrainException("bench --nproc compares training steps: use it with --mode step.");
        if (s.Processes < 2) throw new M3TrainException($"bench --nproc {s.Processes}: give 2 or more ranks to compare with one.");
        Directory.CreateDirectory(folder);
        var load = new JsonObject { ["before"] = LoadAverage() };
        var single = RunOnce(s, 1, overlap: true, runRanks, folder, "single");
        var overlapped = RunOnce(s, s.Processes, overlap: true, runRanks, folder, "parallel");
        var serial = RunOnce(s, s.Processes, overlap: false, runRanks, folder, "parallel-no-overlap");
        load["after"] = LoadAverage();

        double one = StepSeconds(single), many = StepSeconds(overlapped), manySerial = StepSeconds(serial);
        return new JsonObject
        {
            ["schema"] = Schema,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            ["settings"] = single["settings"]!.DeepClone(),
            ["machine"] = single["machine"]!.DeepClone(),
            ["model"] = single["model"]!.DeepClone(),
            ["ranks"] = s.Processes,
            ["threads_per_rank"] = s.Threads ?? 1,
            ["load_average"] = load,
            ["single"] = Summary(single),
            ["parallel"] = Summary(overlapped),
            ["parallel_no_overlap"] = Summary(serial),
            // Fixed per-rank batch: N ranks ideally take one rank's step time for N times its tokens.
            ["scaling_efficiency"] = one / many,
            ["scaling_efficiency_no_overlap"] = one / manySerial,
            ["speedup"] = s.Processes * one / many,
            ["allreduce_seconds_per_step"] = ReduceSeconds(serial),
            ["allreduce_exposed_seconds_per_step"] = ReduceSeconds(overlapped),
            ["overlap_saves_seconds_per_step"] = manySerial - many,
            ["goal_efficiency"] = 0.9,
        };
    }

    /// <summary>The command line of one rank's step benchmark: every setting of <paramref name="s"/>, one thread unless it names more.</summary>
    public static IReadOnlyList<string> RankArguments(BenchSettings s, bool overlap, string output)
    {
        var arguments = new List<string>
        {
            "bench", "--mode", "step", "--preset", s.Preset,
            "--queries", Text(s.Queries), "--group", Text(s.Group),
            "--query-length", Text(s.QueryTokens), "--passage-length", Text(s.PassageTokens),
            "--steps", Text(s.Steps), "--warmup", Text(s.Warmup),
            "--precision", s.Precision switch { ComputePrecision.BFloat16 => "bf16", ComputePrecision.Float16 => "fp16", ComputePrecision.Float32 => "fp32", _ => "auto" },
            "--checkpointing", s.Checkpointing ? "on" : "off",
            "--device", s.Device, "--threads", Text(s.Threads ?? 1), "--seed", Text(s.Seed),
            "--overlap", overlap ? "on" : "off", "--output", output,
        };
        if (s.SubBatch is int sub) arguments.AddRange(["--sub-batch", Text(sub)]);
        return arguments;
    }

    static JsonObject RunOnce(BenchSettings s, int processes, bool overlap, RankRunner runRanks, string folder, string name)
    {
        string output = Path.Combine(folder, $"{name}.json");
        int code = runRanks(processes, RankArguments(s, overlap, output), Path.Combine(folder, name));
        if (code != 0 || !File.Exists(output))
            throw new M3TrainException($"bench --nproc: the {name} run ({processes} rank{(processes > 1 ? "s" : "")}) failed with exit code {code}; " +
                                       $"its ranks' output is in {Path.Combine(folder, name)}.");
        return JsonNode.Parse(File.ReadAllText(output))!.AsObject();
    }

    static JsonObject Summary(JsonObject report)
    {
        var result = report["result"]!;
        var summary = new JsonObject
        {
            ["world_size"] = result["world_size"]!.GetValue<int>(),
            ["step_seconds"] = result["step_seconds"]!.DeepClone(),
            ["tokens_per_second_per_rank"] = result["tokens_per_second"]!.GetValue<double>(),
            ["world_tokens_per_second"] = result["world_tokens_per_second"]!.GetValue<double>(),
            ["process_cpu_seconds_per_step"] = result["process_cpu_seconds_per_step"]!.GetValue<double>(),
            ["phases"] = result["phases"]!.DeepClone(),
        };
        if (result["data_parallel"] is { } parallel) summary["data_parallel"] = parallel.DeepClone();
        return summary;
    }

    static double StepSeconds(JsonObject report) => report["result"]!["step_seconds"]!["mean"]!.GetValue<double>();

    static double ReduceSeconds(JsonObject report) =>
        report["result"]!["data_parallel"]!["gradient_reduce_seconds_per_step"]!.GetValue<double>();

    /// <summary>The 1, 5 and 15 minute load averages (Linux), or null elsewhere.</summary>
    static JsonArray? LoadAverage()
    {
        const string path = "/proc/loadavg";
        if (!File.Exists(path)) return null;
        var fields = File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return [.. fields.Take(3).Select(f => (JsonNode)double.Parse(f, CultureInfo.InvariantCulture))];
    }

    static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
