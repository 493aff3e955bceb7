using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>
/// <c>m3train dist-check</c>: checks a job's wiring end to end — the rendezvous, then each collective on inputs
/// whose result is known exactly (small integers, so sums are exact in float32 and bfloat16) — and times them.
/// Each rank checks its own results; rank 0 collects every rank's verdict and result digest through the store
/// (not through the collectives under test) and returns the report: correctness, whether all ranks ended with
/// identical bits, and time, algorithm and bus bandwidth per collective and size (bus bandwidth as nccl-tests
/// defines it: all-reduce × 2(W−1)/W, all-gather × (W−1)/W, broadcast × 1).
/// </summary>
public static class CollectiveCheck
{
    sealed record Case(string Collective, string Op, ScalarType Dtype, double BusFactor);

    sealed record Outcome(bool Correct, long Digest, double[] Seconds);

    public static JsonObject? Run(DistributedContext context, CollectiveCheckOptions options)
    {
        int world = context.WorldSize;
        Case[] cases =
        [
            new("all_reduce", "sum", ScalarType.Float32, 2.0 * (world - 1) / world),
            new("all_reduce", "average", ScalarType.Float32, 2.0 * (world - 1) / world),
            new("all_reduce", "sum", ScalarType.BFloat16, 2.0 * (world - 1) / world),
            new("all_gather", "", ScalarType.Float32, (world - 1.0) / world),
            new("broadcast", $"from rank {world - 1}", ScalarType.Float32, 1.0),
        ];
        var report = new JsonObject
        {
            ["world_size"] = world,
            ["backend"] = context.Collectives.Backend,
            ["device"] = context.Device.ToString(),
            ["launch"] = context.Launch.ToString(),
            ["store_barrier_us"] = StoreBarrier(context),
        };
        var results = new JsonArray();
        bool ok = true;
        int index = 0;
        foreach (long bytes in options.Sizes)
        {
            foreach (var check in cases)
            {
                var outcome = Measure(context, check, bytes / (check.Dtype == ScalarType.BFloat16 ? 2 : 4), options);
                var verdicts = Collect(context, $"dist-check/{index++}", outcome);
                if (verdicts is null) continue;
                var failed = Enumerable.Range(0, world).Where(r => !verdicts[r].Correct).ToList();
                bool identical = verdicts.All(v => v.Digest == verdicts[0].Digest);
                ok &= failed.Count == 0 && identical;
                double mean = outcome.Seconds.Average(), min = outcome.Seconds.Min();
                double algorithmBytes = check.Collective == "all_gather" ? bytes * (double)world : bytes;
                results.Add(new JsonObject
                {
                    ["collective"] = check.Collective,
                    ["op"] = check.Op,
                    ["dtype"] = check.Dtype.ToString().ToLowerInvariant(),
                    ["bytes"] = bytes,
                    ["correct"] = failed.Count == 0,
                    ["failed_ranks"] = new JsonArray([.. failed.Select(r => (JsonNode)r)]),
                    ["identical_across_ranks"] = identical,
                    ["time_us"] = new JsonObject { ["mean"] = Round(mean * 1e6), ["min"] = Round(min * 1e6) },
                    ["algbw_gbps"] = Bandwidth(algorithmBytes, mean),
                    ["busbw_gbps"] = Bandwidth(algorithmBytes * check.BusFactor, mean),
                });
            }
        }
        report["results"] = results;
        if (options.Soak > TimeSpan.Zero)
        {
            Log.Information("dist-check: all-reducing {Bytes} bytes for {Seconds} s", options.Sizes.Max(), options.Soak.TotalSeconds);
            var soak = Soak(context, options.Sizes.Max() / 4, options.Soak);
            var verdicts = Collect(context, "dist-check/soak", soak);
            if (verdicts != null)
            {
                ok &= verdicts.All(v => v.Correct);
                report["soak"] = new JsonObject { ["seconds"] = options.Soak.TotalSeconds, ["iterations"] = soak.Seconds.Length, ["correct"] = verdicts.All(v => v.Correct) };
            }
        }
        report["ok"] = ok;
        return context.IsMain ? report : null;
    }

    static JsonObject StoreBarrier(DistributedContext context)
    {
        if (context.Store is null) return new JsonObject { ["mean"] = 0, ["min"] = 0 };
        var seconds = Enumerable.Range(0, 5).Select(_ =>
        {
            var clock = Stopwatch.StartNew();
            context.Store.Barrier("dist-check");
            return clock.Elapsed.TotalSeconds;
        }).ToList();
        return new JsonObject { ["mean"] = Round(seconds.Average() * 1e6), ["min"] = Round(seconds.Min() * 1e6) };
    }

    static Outcome Measure(DistributedContext context, Case check, long elements, CollectiveCheckOptions options)
    {
        using var scope = NewDisposeScope();
        int rank = context.Rank, world = context.WorldSize, root = world - 1;
        var device = context.Device;
        var index = arange(elements, ScalarType.Int64);
        Tensor input, expected;
        switch (check.Collective)
        {
            case "all_reduce":
                input = ((index + rank) % 3).to(check.Dtype);
                var sum = Enumerable.Range(0, world).Select(r => (index + r) % 3).Aggregate((a, b) => a + b);
                expected = check.Op == "sum" ? sum.to(check.Dtype) : (sum.to(ScalarType.Float64) / world).to(check.Dtype);
                break;
            case "all_gather":
                input = ((index % 4) + 4 * rank).to(check.Dtype);
                expected = cat(Enumerable.Range(0, world).Select(r => ((index % 4) + 4 * r).to(check.Dtype)).ToList(), 0);
                break;
            default:
                input = rank == root ? ((index % 1000).to(check.Dtype) + 0.5) : full(elements, -1f, check.Dtype);
                expected = (index % 1000).to(check.Dtype) + 0.5;
                break;
        }
        var source = input.to(device);
        var work = empty_like(source);
        var output = check.Collective == "all_gather" ? empty(elements * world, check.Dtype, device) : work;
        var seconds = new double[options.Iterations];
        for (int i = -options.Warmup; i < options.Iterations; i++)
        {
            work.copy_(source);
            Synchronize(device);
            var clock = Stopwatch.StartNew();
            Start(context.Collectives, check, work, output, root).Wait();
            if (i >= 0) seconds[i] = clock.Elapsed.TotalSeconds;
        }
        var result = output.cpu();
        bool correct = check.Op == "average" ? result.allclose(expected, rtol: 1e-6, atol: 1e-6) : result.bytes.SequenceEqual(expected.bytes);
        return new Outcome(correct, WeightChecksum.Of([result]), seconds);
    }

    static ICollectiveWork Start(ICollectives collectives, Case check, Tensor work, Tensor output, int root) => check.Collective switch
    {
        "all_reduce" => collectives.StartAllReduce(work, check.Op == "sum" ? ReduceOp.Sum : ReduceOp.Average),
        "all_gather" => collectives.StartAllGather(work, output),
        _ => collectives.StartBroadcast(work, root),
    };

    /// <summary>Repeated all-reduces of one size for <paramref name="duration"/>, each result checked.</summary>
    static Outcome Soak(DistributedContext context, long elements, TimeSpan duration)
    {
        using var scope = NewDisposeScope();
        var index = arange(elements, ScalarType.Int64);
        var source = ((index + context.Rank) % 3).to(ScalarType.Float32).to(context.Device);
        var expected = Enumerable.Range(0, context.WorldSize).Select(r => (index + r) % 3).Aggregate((a, b) => a + b).to(ScalarType.Float32);
        var work = empty_like(source);
        var seconds = new List<double>();
        bool correct = true;
        var total = Stopwatch.StartNew();
        // Every rank decides to go on from rank 0's clock (a broadcast flag), so all ranks run the same number of rounds.
        var goOn = ones(1, ScalarType.Int32, context.Device);
        while (true)
        {
            goOn.fill_(total.Elapsed < duration ? 1 : 0);
            context.Collectives.Broadcast(goOn, 0);
            if (goOn.item<int>() == 0) break;
            work.copy_(source);
            var clock = Stopwatch.StartNew();
            context.Collectives.AllReduce(work);
            seconds.Add(clock.Elapsed.TotalSeconds);
            correct &= work.cpu().bytes.SequenceEqual(expected.bytes);
        }
        return new Outcome(correct, 0, [.. seconds]);
    }

    /// <summary>Every rank's verdict, gathered on rank 0 through the store; null on the other ranks.</summary>
    static Outcome[]? Collect(DistributedContext context, string key, Outcome mine)
    {
        if (context.Store is null) return [mine];
        string text = string.Create(CultureInfo.InvariantCulture, $"{(mine.Correct ? 1 : 0)} {mine.Digest}");
        context.Store.Set($"{key}/{context.Rank}", Encoding.UTF8.GetBytes(text));
        if (!context.IsMain) return null;
        return Enumerable.Range(0, context.WorldSize).Select(r =>
        {
            var parts = Encoding.UTF8.GetString(context.Store.Wait($"{key}/{r}", waitingFor: $"rank {r}'s {key} verdict")).Split(' ');
            return new Outcome(parts[0] == "1", long.Parse(parts[1], CultureInfo.InvariantCulture), []);
        }).ToArray();
    }

    static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    static double Round(double value) => Math.Round(value, 3);

    static double Bandwidth(double bytes, double seconds) => seconds > 0 ? Round(bytes / seconds / 1e9) : 0;

    /// <summary>One line per result, for the log.</summary>
    public static string Summary(JsonObject report) => string.Join("\n", report["results"]!.AsArray().Select(r =>
        string.Create(CultureInfo.InvariantCulture,
            $"{r!["collective"]}{(r["op"]!.GetValue<string>() is { Length: > 0 } op ? " " + op : "")} {r["dtype"]} {r["bytes"]} B: {(r["correct"]!.GetValue<bool>() && r["identical_across_ranks"]!.GetValue<bool>() ? "ok" : "WRONG")}, " +
            $"{r["time_us"]!["mean"]} us, bus {r["busbw_gbps"]} GB/s")));

    public static string ToJson(JsonObject report) => report.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
}
