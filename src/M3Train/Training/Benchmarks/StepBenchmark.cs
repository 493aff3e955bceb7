using System.Text.Json.Nodes;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// Training-step throughput: <see cref="BenchTrainingStep"/> (the trainer's step: encode, unified loss with
/// self-distillation, backward, clipping, AdamW) on random-token batches. Two passes: the timed pass runs the
/// step exactly as training does, whose only host sync is the finite check before the update (per-step times
/// are host times between steps, with one more device sync after the last step so the total is complete);
/// then a shorter pass that synchronizes at every phase boundary splits the time into forward, backward and optimizer.
/// </summary>
public static class StepBenchmark
{
    /// <summary>Distinct random batches cycled through, so no step sees the exact ids of the one before.</summary>
    const int DistinctBatches = 2;

    /// <summary>Steps of the phase-split pass (at most).</summary>
    const int SplitSteps = 3;

    /// <remarks>
    /// On several ranks (<paramref name="group"/>) every rank runs the step on batches of its own (drawn from the seed and
    /// its rank) and the gradients are averaged over the ranks; <c>data_parallel</c> then reports how long averaging
    /// blocked each timed step, and <c>world_tokens_per_second</c> the throughput of all ranks together.
    /// </remarks>
    public static JsonObject Run(BenchSettings s, DataParallelGroup group, ComputePrecision precision, JsonObject report)
    {
        var device = group.Device;
        var config = BenchPresets.Config(s.Preset);
        using var model = BenchModel.Create(config, s, device, precision);
        report["model"] = BenchModel.Describe(config, model);
        model.train();
        using var step = new BenchTrainingStep(model, group, s);
        var random = new Random(s.Seed + 7919 * group.Rank);
        var batches = Enumerable.Range(0, DistinctBatches)
            .Select(i => RandomTokenBatch.Create(s.Queries, s.Group, s.QueryTokens, s.PassageTokens, config.VocabSize, random, i))
            .ToArray();
        var reduceSeconds = new List<double>();
        var result = Measure(s, device, (i, phases) =>
        {
            var update = step.Run(batches[i % batches.Length], phases);
            reduceSeconds.Add(step.LastReduceSeconds);
            return update;
        });
        result["world_size"] = group.WorldSize;
        result["world_tokens_per_second"] = result["tokens_per_second"]!.GetValue<double>() * group.WorldSize;
        if (group.WorldSize > 1)
        {
            // Measure's calls: the warmup steps, then the timed ones.
            var timed = reduceSeconds.Skip(s.Warmup).Take(s.Steps).ToList();
            result["data_parallel"] = new JsonObject
            {
                ["backend"] = group.Collectives.Backend,
                ["overlap"] = s.Overlap,
                ["buckets"] = step.LastBuckets.Buckets,
                ["buckets_started_during_backward"] = step.LastBuckets.Overlapped,
                ["gradient_reduce_seconds_per_step"] = timed.Average(),
                ["gradient_reduce_fraction"] = timed.Average() / result["step_seconds"]!["mean"]!.GetValue<double>(),
            };
        }
        return result;
    }

    /// <summary>
    /// Warmup, timed pass and phase split around <paramref name="runStep"/> (step index, phase callback → result);
    /// shared with <see cref="DataBenchmark"/>, whose steps come from the loader.
    /// </summary>
    internal static JsonObject Measure(BenchSettings s, Device device, Func<int, Action<StepPhase>?, StepUpdateResult> runStep)
    {
        var clock = new DeviceClock(device);
        int index = 0;
        for (int i = 0; i < s.Warmup; i++) runStep(index++, null);

        clock.Synchronize();
        StepUpdateResult? last = null;
        var marks = new double[s.Steps + 1];
        JsonObject memoryReport;
        double cpuStart = DeviceClock.ProcessCpuSeconds();
        using (var memory = new BenchMemory(device))
        {
            marks[0] = clock.Now;
            for (int i = 0; i < s.Steps; i++)
            {
                last = runStep(index++, null);
                marks[i + 1] = clock.Now;
            }
            marks[s.Steps] = clock.SynchronizedNow();
            memoryReport = memory.Report();
        }
        double cpuPerStep = (DeviceClock.ProcessCpuSeconds() - cpuStart) / s.Steps;

        var timer = new PhaseTimer(clock);
        for (int i = 0; i < Math.Min(s.Steps, SplitSteps); i++)
        {
            timer.BeginStep();
            runStep(index++, timer.End);
        }
        var result = Result(s, marks, timer, memoryReport, last!);
        result["process_cpu_seconds_per_step"] = cpuPerStep;
        return result;
    }

    static JsonObject Result(BenchSettings s, double[] marks, PhaseTimer timer, JsonObject memory, StepUpdateResult last)
    {
        var seconds = Enumerable.Range(0, s.Steps).Select(i => marks[i + 1] - marks[i]).ToArray();
        double mean = (marks[^1] - marks[0]) / s.Steps;
        var stats = TimingStats.Of(seconds) with { Mean = mean };
        var phases = new JsonObject();
        double sum = 0;
        foreach (var phase in Enum.GetValues<StepPhase>())
        {
            double t = timer.MeanSeconds(phase);
            phases[phase.ToString().ToLowerInvariant() + "_seconds"] = t;
            sum += t;
        }
        foreach (var phase in Enum.GetValues<StepPhase>())
            phases[phase.ToString().ToLowerInvariant() + "_fraction"] = sum > 0 ? timer.MeanSeconds(phase) / sum : 0;
        phases["sum_seconds"] = sum;
        phases["steps"] = timer.Steps;
        phases["method"] = "separate pass with a device sync at every phase boundary";
        return new JsonObject
        {
            ["step_seconds"] = Json(stats),
            ["tokens_per_step"] = s.TokensPerStep,
            ["texts_per_step"] = s.TextsPerStep,
            ["tokens_per_second"] = s.TokensPerStep / mean,
            ["texts_per_second"] = s.TextsPerStep / mean,
            ["phases"] = phases,
            ["memory"] = memory,
            ["last_loss"] = last.Loss,
            ["last_grad_norm"] = last.GradNorm,
            ["last_step_applied"] = last.Applied,
        };
    }

    internal static JsonObject Json(TimingStats t) => new()
    {
        ["mean"] = t.Mean,
        ["p50"] = t.P50,
        ["p90"] = t.P90,
        ["min"] = t.Min,
        ["max"] = t.Max,
        ["count"] = t.Count,
    };
}
