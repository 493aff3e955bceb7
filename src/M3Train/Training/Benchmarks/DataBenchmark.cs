using System.Text.Json.Nodes;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// The data pipeline on real data (<see cref="BenchSettings.Data"/>, tokenized with <see cref="BenchSettings.Tokenizer"/>,
/// B queries per batch, G passages, Lq/Lp as maximum lengths): first the loader alone, drained as fast as it
/// produces (batches/s, texts/s, tokens/s), then training steps fed by it, timing how long each step waits in
/// <see cref="TrainDataLoader.Next"/>: the loader keeps up when that wait is near zero.
/// </summary>
public static class DataBenchmark
{
    /// <summary>Batches drained from the loader alone (at least).</summary>
    const int MinLoaderBatches = 50;

    public static JsonObject Run(BenchSettings s, Device device, ComputePrecision precision, JsonObject report)
    {
        var config = BenchPresets.Config(s.Preset);
        BenchModel.CheckLengths(config, s);
        var tokenizer = BenchText.LoadTokenizer(s.Tokenizer);
        if (tokenizer.VocabSize > config.VocabSize)
            throw new M3TrainException($"--tokenizer {s.Tokenizer} has {tokenizer.VocabSize} ids but --preset {s.Preset} only {config.VocabSize}; use a preset with the tokenizer's vocabulary.");
        var dataConfig = new DataConfig
        {
            Files = [.. s.Data],
            TrainGroupSize = s.Group,
            QueryMaxLen = s.QueryTokens,
            PassageMaxLen = s.PassageTokens,
            BatchSizes = [.. Enumerable.Repeat(s.Queries, new DataConfig().BatchSizes.Count)],
            CacheTokenCounts = false,
        };
        var clock = new DeviceClock(device);
        double loadStart = clock.Now;
        using var data = TrainData.Load(dataConfig, tokenizer);
        double loadSeconds = clock.Now - loadStart;

        var result = new JsonObject
        {
            ["files"] = new JsonArray([.. data.Files.Select(f => (JsonNode)f.Path)]),
            ["rows"] = data.Datasets.Sum(d => d.Count),
            ["index_seconds"] = loadSeconds,
            ["loader"] = DrainLoader(s, data, tokenizer, clock),
        };

        using var model = BenchModel.Create(config, s, device, precision);
        report["model"] = BenchModel.Describe(config, model);
        model.train();
        using var step = new BenchTrainingStep(model, DataParallelGroup.Alone(device), s);
        using var loader = new TrainDataLoader(data, tokenizer, s.Seed, subBatchSize: s.SubBatch);
        var waits = new List<double>();
        var stepResult = StepBenchmark.Measure(s, device, (i, phases) =>
        {
            double before = clock.Now;
            var batch = loader.Next();
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

    static JsonObject DrainLoader(BenchSettings s, TrainData data, XlmrTokenizer tokenizer, DeviceClock clock)
    {
        using var loader = new TrainDataLoader(data, tokenizer, s.Seed, subBatchSize: s.SubBatch);
        double start = clock.Now;
        loader.Next();
        double first = clock.Now - start;
        int count = Math.Max(MinLoaderBatches, s.Steps);
        long texts = 0, tokens = 0, padded = 0;
        start = clock.Now;
        for (int i = 0; i < count; i++)
        {
            var batch = loader.Next();
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
            ["texts_per_second"] = texts / seconds,
            ["tokens_per_second"] = tokens / seconds,
            ["padded_tokens_per_second"] = padded / seconds,
            ["padding_fraction"] = padded == 0 ? 0 : 1 - (double)tokens / padded,
        };
    }
}
