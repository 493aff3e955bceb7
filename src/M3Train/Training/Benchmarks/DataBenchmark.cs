using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Distributed;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// The data pipeline on real data (<see cref="BenchSettings.Data"/>, tokenized with <see cref="BenchSettings.Tokenizer"/>,
/// B queries per batch, G passages, Lq/Lp as maximum lengths), as this rank of a launch sees it:
/// <list type="bullet">
/// <item><c>index</c>: building the row index (rows per second and per CPU-second, parts built here), its bytes per row,
/// and opening it again (checksums and mapping);</item>
/// <item><c>plan</c>: the first epoch's plan (with the bin directory a permuted plan needs), a later epoch's, and finding
/// this rank's rows of a batch;</item>
/// <item><c>loader</c>: the loader alone, drained as fast as it produces, and <c>gpu</c>: its padded tokens per second
/// against what one GPU trains on (the H200 anchor at issue 10's goal);</item>
/// <item><c>plan_at_scale</c> (with <see cref="BenchSettings.PlanRows"/>): planning over a synthesized index of that many rows;</item>
/// <item><c>steps</c>: training steps fed by the loader, timing how long each waits for its batch.</item>
/// </list>
/// </summary>
public static class DataBenchmark
{
    /// <summary>Batches drained from the loader alone (at least).</summary>
    const int MinLoaderBatches = 50;
    /// <summary>Batches whose rank slice is looked up to time it, and whose rows make the plan digest.</summary>
    const int SampledBatches = 20;

    public static JsonObject Run(BenchSettings s, Device device, ComputePrecision precision, JsonObject report)
    {
        var config = BenchPresets.Config(s.Preset);
        BenchModel.CheckLengths(config, s);
        var tokenizer = BenchText.LoadTokenizer(s.Tokenizer);
        if (tokenizer.VocabSize > config.VocabSize)
            throw new M3TrainException($"--tokenizer {s.Tokenizer} has {tokenizer.VocabSize} ids but --preset {s.Preset} only {config.VocabSize}; use a preset with the tokenizer's vocabulary.");
        var launch = LaunchEnvironment.FromProcess();
        string indexDir = s.IndexDir ?? Path.Combine(Path.GetTempPath(), $"m3train-bench-index-{Guid.NewGuid():N}");
        var dataConfig = new DataConfig
        {
            Files = [.. s.Data],
            TrainGroupSize = s.Group,
            QueryMaxLen = s.QueryTokens,
            PassageMaxLen = s.PassageTokens,
            BatchSizes = [.. Enumerable.Repeat(s.Queries, new DataConfig().BatchSizes.Count)],
            IndexDir = indexDir,
        };
        var clock = new DeviceClock(device);
        try
        {
            var result = new JsonObject { ["rank"] = launch.Rank, ["world_size"] = launch.WorldSize };
            using var data = MeasureIndex(dataConfig, tokenizer, clock, result);
            result["files"] = new JsonArray([.. data.Files.Select(f => (JsonNode)f.Path)]);
            result["rows"] = data.RowCount;
            result["plan"] = MeasurePlan(data, s.Seed, launch.WorldSize, launch.Rank, clock);
            var loader = DrainLoader(s, data, tokenizer, clock, launch);
            result["loader"] = loader;
            result["gpu"] = CompareWithGpu(loader);
            if (s.PlanRows > 0) result["plan_at_scale"] = PlanAtScale(s, dataConfig, tokenizer, clock);
            // --steps 0: the data path alone, for files whose batches would take a CPU minutes per step.
            if (s.Steps == 0) return result;

            using var model = BenchModel.Create(config, s, device, precision);
            report["model"] = BenchModel.Describe(config, model);
            model.train();
            using var step = new BenchTrainingStep(model, DataParallelGroup.Alone(device), s);
            using var feeding = new TrainDataLoader(data, tokenizer, s.Seed, launch.WorldSize, launch.Rank, subBatchOfBin: _ => s.SubBatch);
            var waits = new List<double>();
            var stepResult = StepBenchmark.Measure(s, device, (i, phases) =>
            {
                double before = clock.Now;
                var batch = feeding.Next();
                if (i >= s.Warmup && phases is null) waits.Add(clock.Now - before);
                return step.Run(batch, phases);
            });
            // Real batches vary in length: the step figures above count B·(Lq + G·Lp) tokens per step, the most a batch holds.
            stepResult.Remove("tokens_per_second");
            stepResult.Remove("tokens_per_step");
            double total = waits.Sum();
            double stepMean = stepResult["step_seconds"]!["mean"]!.GetValue<double>();
            stepResult["loader_wait_seconds"] = StepBenchmark.Json(TimingStats.Of(waits));
            stepResult["loader_wait_fraction"] = total / (stepMean * waits.Count);
            result["steps"] = stepResult;
            return result;
        }
        finally
        {
            if (s.IndexDir is null) DeleteFolder(indexDir);
        }
    }

    /// <summary>Loads the data twice: the first load builds what is missing of the index (timed), the second only opens it.</summary>
    static TrainData MeasureIndex(DataConfig config, XlmrTokenizer tokenizer, DeviceClock clock, JsonObject result)
    {
        double start = clock.Now, cpu = DeviceClock.ProcessCpuSeconds();
        double buildSeconds, buildCpu;
        var index = new JsonObject();
        using (var built = TrainData.Load(config, tokenizer))
        {
            buildSeconds = clock.Now - start;
            buildCpu = DeviceClock.ProcessCpuSeconds() - cpu;
            long rowsRead = built.Files.Sum(f => f.TotalRows), rows = built.Files.Sum(f => (long)f.RowCount), bytes = built.Files.Sum(f => f.IndexBytes);
            int builtHere = built.Files.Sum(f => f.PartsBuilt), parts = built.Files.Sum(f => f.Parts.Count);
            index["parts"] = parts;
            index["parts_built_here"] = builtHere;
            index["rows_read"] = rowsRead;
            index["bytes"] = bytes;
            index["bytes_per_row"] = rows == 0 ? 0 : (double)bytes / rows;
            index["build_seconds"] = buildSeconds;
            index["build_cpu_seconds"] = buildCpu;
            // Rates count what this process indexed: with other ranks building other parts, its share of the rows.
            double share = parts == 0 ? 0 : (double)builtHere / parts;
            index["rows_per_second"] = rowsRead * share / buildSeconds;
            index["rows_per_cpu_second"] = buildCpu > 0 ? rowsRead * share / buildCpu : 0;
        }
        start = clock.Now;
        var data = TrainData.Load(config, tokenizer);
        index["open_seconds"] = clock.Now - start;
        result["index"] = index;
        return data;
    }

    /// <summary>The first epoch's plan (building the bin directory when permuted), a later epoch's, and this rank's rows of a batch.</summary>
    static JsonObject MeasurePlan(TrainData data, long seed, int worldSize, int rank, DeviceClock clock)
    {
        double start = clock.Now;
        var first = BatchPlan.Create(data, seed, 0, worldSize);
        double firstSeconds = clock.Now - start;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        start = clock.Now;
        var second = BatchPlan.Create(data, seed, 1, worldSize);
        double epochSeconds = clock.Now - start;
        long epochBytes = GC.GetTotalAllocatedBytes(precise: true) - allocated;
        // The first batches warm the lookup up (the JIT optimizes it after some calls); the next ones are timed.
        int warm = Math.Min(SampledBatches, second.Count / 2), sampled = Math.Min(SampledBatches, second.Count - warm);
        for (int step = 0; step < warm; step++) second.Batches[step].Slice(rank);
        start = clock.Now;
        for (int step = warm; step < warm + sampled; step++) second.Batches[step].Slice(rank);
        double sliceSeconds = sampled == 0 ? 0 : (clock.Now - start) / sampled;
        var digest = new StringBuilder(first.Signature);
        foreach (var batch in first.Batches.Take(SampledBatches)) digest.Append($"|{batch.Dataset}:{batch.Bin}:{string.Join(',', batch.Rows)}");
        return new JsonObject
        {
            ["permuted"] = first.Permuted,
            ["signature"] = first.Signature,
            ["digest"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(digest.ToString())))[..16],
            ["steps_per_epoch"] = first.Count,
            ["first_epoch_seconds"] = firstSeconds,
            ["epoch_seconds"] = epochSeconds,
            ["epoch_allocated_bytes"] = epochBytes,
            ["directory_bytes"] = first.Permuted ? data.Bins.Bytes : 0,
            ["rank_slice_seconds"] = sliceSeconds,
        };
    }

    static JsonObject DrainLoader(BenchSettings s, TrainData data, XlmrTokenizer tokenizer, DeviceClock clock, LaunchEnvironment launch)
    {
        using var loader = new TrainDataLoader(data, tokenizer, s.Seed, launch.WorldSize, launch.Rank, subBatchOfBin: _ => s.SubBatch);
        double start = clock.Now;
        loader.Next();
        double first = clock.Now - start;
        int count = Math.Max(MinLoaderBatches, s.Steps);
        long rows = 0, texts = 0, tokens = 0, padded = 0;
        start = clock.Now;
        for (int i = 0; i < count; i++)
        {
            var batch = loader.Next();
            rows += batch.BatchSize;
            foreach (var part in new[] { batch.Queries, batch.Passages }.OfType<EncodedBatch>())
            {
                texts += part.BatchSize;
                tokens += part.AttentionMask.Sum();
                padded += part.AttentionMask.LongLength;
            }
        }
        double seconds = clock.Now - start;
        return new JsonObject
        {
            ["first_batch_seconds"] = first,
            ["batches"] = count,
            ["batches_per_second"] = count / seconds,
            ["rows_per_second"] = rows / seconds,
            ["texts_per_second"] = texts / seconds,
            ["tokens_per_second"] = tokens / seconds,
            ["padded_tokens_per_second"] = padded / seconds,
            ["padding_fraction"] = padded == 0 ? 0 : 1 - (double)tokens / padded,
        };
    }

    /// <summary>The loader's padded tokens per second (what a GPU step computes on) against one H200 at issue 10's goal.</summary>
    static JsonObject CompareWithGpu(JsonObject loader)
    {
        var anchor = FlagEmbeddingAnchor.Table[0];
        double goal = anchor.TokensPerSecond * FlagEmbeddingAnchor.TokensPerSecondGoal;
        return new JsonObject
        {
            ["reference"] = $"one NVIDIA H200 training BGE-M3 at {FlagEmbeddingAnchor.TokensPerSecondGoal}x FlagEmbedding's {anchor.TokensPerSecond:F0} tokens/s " +
                            $"({anchor.Queries}x{anchor.Group}, {anchor.QueryLength}/{anchor.PassageLength} tokens)",
            ["gpu_tokens_per_second"] = goal,
            ["loader_to_gpu_ratio"] = loader["padded_tokens_per_second"]!.GetValue<double>() / goal,
        };
    }

    /// <summary>
    /// Planning over <see cref="BenchSettings.PlanRows"/> rows: an index of that many rows with random lengths is
    /// written for an empty data file (no row is read, so none is needed), then opened and planned as a run above
    /// <c>data.shuffle_in_memory_rows</c> would (permuted, whatever the number of rows).
    /// </summary>
    static JsonObject PlanAtScale(BenchSettings s, DataConfig dataConfig, XlmrTokenizer tokenizer, DeviceClock clock)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"m3train-bench-plan-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(folder);
            string file = Path.Combine(folder, "synthetic.jsonl");
            File.WriteAllBytes(file, []);
            // The measured run's data settings, over an empty file whose index is synthesized, always planned by permutation.
            var config = dataConfig with { Files = [file], IndexDir = Path.Combine(folder, "index"), ShuffleInMemoryRows = 0 };
            var source = DataFileSource.Inspect(file, false, tokenizer, config);
            Directory.CreateDirectory(config.IndexDir);
            double start = clock.Now;
            using (var writer = new RowIndexWriter(Path.Combine(config.IndexDir, source.PartFileName(0))))
            {
                var random = new Random(s.Seed);
                for (long i = 0; i < s.PlanRows; i++)
                    writer.Add(RowInfo.Capped(i, random.Next(8, 65), (int)Math.Pow(2, 5 + 8 * random.NextDouble()), 7, false, RowTypeRule.None));
                writer.Finish(source.PartKey(0), new RowIndexSummary(RowKind.Group, s.PlanRows, s.PlanRows, 0,
                    Convert.ToHexStringLower(SHA256.HashData(ReadOnlySpan<byte>.Empty)), null, 0, 0, [], []));
            }
            double writeSeconds = clock.Now - start;
            GC.Collect();
            long anon = MemoryProbe.HostAnonymousRssBytes() ?? 0, mapped = MemoryProbe.HostFileRssBytes() ?? 0;
            start = clock.Now;
            using var data = TrainData.Load(config, tokenizer);
            double openSeconds = clock.Now - start;
            var plan = MeasurePlan(data, s.Seed, 1, 0, clock);
            GC.Collect();
            plan["index_write_seconds"] = writeSeconds;
            plan["index_open_seconds"] = openSeconds;
            plan["rows"] = s.PlanRows;
            plan["private_memory_growth_bytes"] = (MemoryProbe.HostAnonymousRssBytes() ?? 0) - anon;
            plan["mapped_memory_growth_bytes"] = (MemoryProbe.HostFileRssBytes() ?? 0) - mapped;
            return plan;
        }
        finally
        {
            DeleteFolder(folder);
        }
    }

    static void DeleteFolder(string folder)
    {
        try { Directory.Delete(folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
