using System.Diagnostics;
using M3Train.Cli;
using M3Train.Config;
using M3Train.Data;
using M3Train.Tests.Data;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Training;

[Collection(HostMemoryCollection.Name)]
public class BatchSizeProbeTests(ITestOutputHelper output)
{
    /// <summary>A small run of the shipped tiny model: 2 length bins, short texts, one training step.</summary>
    static string WriteConfig(DataTestFolder folder, string extra = "")
    {
        string path = Path.Combine(folder.Path, "probe.yaml");
        File.WriteAllText(path, $"""
            output_dir: {Path.Combine(folder.Path, "run")}
            model:
              path: {TinyRun.Repo("data", "models", "tiny-m3")}
            data:
              files: [{TinyRun.Repo("data", "train", "nq.jsonl")}, {TinyRun.Repo("data", "train", "toy_train_data1.jsonl")}]
              train_group_size: 2
              query_max_len: 16
              passage_max_len: 48
              bin_edges: [24]
              batch_sizes: [3, 3]
              cache_token_counts: false
            train:
              lr: 1.0e-3
              max_steps: 1
              precision: fp32
              device: cpu
              save_every: 0
              tensorboard: false
            {extra}
            """);
        return path;
    }

    [Fact]
    public void BinLengthsAreEachBinsLongestRowCappedByTheMaximumLengthsAndTheModel()
    {
        var reference = ProbeBin.Of(new DataConfig(), modelMaxTokens: 8192);
        Assert.Equal(9, reference.Count);
        Assert.Equal((499, 499, (int?)null), (reference[0].QueryLength, reference[0].PassageLength, reference[0].SameAs));
        Assert.Equal((512, 512, (int?)null), (reference[1].QueryLength, reference[1].PassageLength, reference[1].SameAs));
        // Rows are capped at 512 tokens, so bins from 1000 up hold none and take bin 1's result.
        Assert.All(reference.Skip(2), b => Assert.Equal(1, b.SameAs));

        var longDocs = ProbeBin.Of(new DataConfig { PassageMaxLen = 8192, PadToMultipleOf = 8 }, modelMaxTokens: 8192);
        Assert.Equal((504, 504), (longDocs[0].QueryLength, longDocs[0].PassageLength));
        Assert.Equal((512, 1000), (longDocs[1].QueryLength, longDocs[1].PassageLength));
        Assert.Equal((512, 8192, "[7000, ∞)"), (longDocs[8].QueryLength, longDocs[8].PassageLength, longDocs[8].Range));
        Assert.All(longDocs, b => Assert.Null(b.SameAs));

        var tiny = ProbeBin.Of(new DataConfig { BinEdges = [24], QueryMaxLen = 16, PassageMaxLen = 512 }, modelMaxTokens: 128);
        Assert.Equal((16, 23), (tiny[0].QueryLength, tiny[0].PassageLength));
        Assert.Equal((16, 128), (tiny[1].QueryLength, tiny[1].PassageLength));
    }

    [Fact]
    public void SearchFindsTheLargestPassingSizeTestingEachSizeOnce()
    {
        foreach (int threshold in new[] { 0, 1, 2, 3, 37, 64, 65, 1000, 1024, 5000 })
            foreach (int start in new[] { 1, 10, 64, 2000 })
            {
                var tested = new List<int>();
                int found = BatchSearch.Largest(start, 1024, n =>
                {
                    tested.Add(n);
                    return n <= threshold;
                });
                Assert.Equal(Math.Min(threshold, 1024), found);
                Assert.Equal(tested.Count, tested.Distinct().Count());
                Assert.All(tested, n => Assert.InRange(n, 1, 1024));
                Assert.True(tested.Count <= 22, $"threshold {threshold}, start {start}: {tested.Count} tests");

                int exactTests = tested.Count;
                tested.Clear();
                int close = BatchSearch.Largest(start, 1024, n =>
                {
                    tested.Add(n);
                    return n <= threshold;
                }, tolerance: 1.0 / 32);
                int answer = Math.Min(threshold, 1024);
                Assert.InRange(close, answer * 32 / 33, answer);
                Assert.True(tested.Count <= exactTests);

                tested.Clear();
                Assert.Equal(answer, BatchSearch.Largest(start, 1024, n =>
                {
                    tested.Add(n);
                    return n <= threshold;
                }, growth: 1.25));
                Assert.Equal(tested.Count, tested.Distinct().Count());
            }
    }

    [Fact]
    public void LinearFitGivesTheLargestSizeUnderALimit()
    {
        var fit = LinearFit.Of([(1, 110), (2, 120), (4, 140)]);
        Assert.Equal(100, fit.Intercept, 9);
        Assert.Equal(10, fit.Slope, 9);
        Assert.Equal(7, fit.LargestWithin(175, 1024));
        Assert.Equal(5, fit.LargestWithin(175, 5));
        Assert.Equal(0, fit.LargestWithin(105, 1024));
        var flat = LinearFit.Of([(1, 50), (2, 50)]);
        Assert.Equal(64, flat.LargestWithin(60, 64));
        Assert.Equal(0, flat.LargestWithin(40, 64));
        Assert.Throws<ArgumentException>(() => LinearFit.Of([(2, 1), (2, 3)]));
    }

    [Fact]
    public void DeviceSearchFindsEachBinsLargestBatchUnderTheLimitAndBeforeOutOfMemory()
    {
        // A simulated GPU: memory grows with the tokens of a step; the allocator fails beyond 60 GB, the limit is 72 GB
        // (0.9 x 80), so for bins with little memory per query the out-of-memory error is what binds.
        var config = new RunConfig { Data = new DataConfig { PassageMaxLen = 8192 } };
        var bins = ProbeBin.Of(config.Data, 8192);
        int g = config.Data.TrainGroupSize;
        const long Base = 3L << 30, Oom = 60L << 30, Limit = 72L << 30;
        static long PerQuery(ProbeTrial t, int g) => (t.QueryLength + g * (long)t.PassageLength) * 40_000L;
        var trials = new List<ProbeTrial>();
        ProbeTrialResult Fake(ProbeTrial t)
        {
            trials.Add(t);
            long peak = Base + t.Batch * PerQuery(t, g);
            return peak > Oom ? ProbeTrialResult.OutOfMemoryResult : new ProbeTrialResult(false, peak, 0.1 * t.Batch);
        }
        var probe = new BatchSizeProbe.Probe(config, bins, new BatchProbeOptions { OutputPath = "unused.yaml" });
        var rows = probe.Search(Fake, Limit, "72 GiB", max: 4096);

        Assert.Equal(bins.Count, rows.Count);
        foreach (var row in rows)
        {
            var trial = new ProbeTrial(row.Bin.QueryLength, row.Bin.PassageLength, 1, null);
            int largest = Enumerable.Range(1, 4096).Last(b => Base + b * PerQuery(trial, g) <= Math.Min(Oom, Limit));
            // Within the search's tolerance of 1/32 below the largest.
            Assert.InRange(row.Batch, largest * 32 / 33, largest);
            Assert.Equal(Base + row.Batch * PerQuery(trial, g), row.PeakBytes);
            Assert.Equal(ProbeEvidence.Measured, row.Evidence);
        }
        Assert.True(rows.Zip(rows.Skip(1)).All(p => p.First.Batch >= p.Second.Batch), "longer bins get smaller batches");
        output.WriteLine($"{trials.Count} trials for {bins.Count} bins: {string.Join(", ", rows.Select(r => r.Batch))}");
        Assert.True(trials.Count <= 6 * bins.Count);
    }

    [Fact]
    public void ProbingOnCpuReturnsATableAndTheWrittenSizesTrain()
    {
        using var folder = new DataTestFolder();
        var config = RunConfig.Load(WriteConfig(folder));
        string probed = Path.Combine(folder.Path, "probed.yaml");
        var clock = Stopwatch.StartNew();
        var report = BatchSizeProbe.Run(config, new BatchProbeOptions { OutputPath = probed, MaxBatch = 6 });
        output.WriteLine($"probe {clock.Elapsed.TotalSeconds:F1} s, limit {report.Limit}\n{report.FormatTable()}");

        Assert.False(report.SubBatches);
        Assert.Equal([0, 1], report.Rows.Select(r => r.Bin.Index));
        Assert.Equal([(16, 23), (16, 48)], report.Rows.Select(r => (r.Bin.QueryLength, r.Bin.PassageLength)));
        foreach (var row in report.Rows)
        {
            Assert.InRange(row.Batch, 1, 6);
            Assert.InRange(row.PeakBytes!.Value, 1, report.LimitBytes);
            Assert.True(row.StepSeconds > 0);
            // The tiny model's steps are milliseconds, so a predicted size is always run to verify it.
            Assert.Contains(row.Evidence, new[] { ProbeEvidence.Measured, ProbeEvidence.Verified });
        }
        var table = report.FormatTable().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, table.Length);
        Assert.StartsWith("bin", table[0]);

        var written = RunConfig.Load(probed);
        Assert.Equal(report.Rows.Select(r => r.Batch), written.Data.BatchSizes);
        // Everything else is the input config.
        Assert.Equal(ConfigWriter.ToYaml(config with { Data = config.Data with { BatchSizes = written.Data.BatchSizes } }), ConfigWriter.ToYaml(written));

        var result = UnifiedFinetuneRecipe.Run(written);
        Assert.Equal(1, result.Steps);
        Assert.True(double.IsFinite(result.LastLoss));
    }

    [Fact]
    public void WithSubBatchesItProbesTheSubBatchAtTheConfiguredBatch()
    {
        using var folder = new DataTestFolder();
        var config = RunConfig.Load(WriteConfig(folder), ["train.sub_batch_size=1", "data.bin_edges=[]", "data.batch_sizes=[2]"]);
        string probed = Path.Combine(folder.Path, "probed.yaml");
        var report = BatchSizeProbe.Run(config, new BatchProbeOptions { OutputPath = probed, MaxBatch = 3 });
        output.WriteLine(report.FormatTable());

        Assert.True(report.SubBatches);
        var row = Assert.Single(report.Rows);
        Assert.Equal(2, row.Batch);
        Assert.InRange(row.SubBatch!.Value, 1, 3);
        var written = RunConfig.Load(probed);
        Assert.Equal(row.SubBatch, written.Train.SubBatchSize);
        Assert.Equal([2], written.Data.BatchSizes);
        Assert.Equal(1, UnifiedFinetuneRecipe.Run(written).Steps);
    }

    [Fact]
    public void WithPerBinSubBatchesItWritesEachBinsLargestSubBatch()
    {
        using var folder = new DataTestFolder();
        var config = RunConfig.Load(WriteConfig(folder), ["train.sub_batch_sizes=[1, 1]", "data.batch_sizes=[2, 2]"]);
        string probed = Path.Combine(folder.Path, "probed.yaml");
        var report = BatchSizeProbe.Run(config, new BatchProbeOptions { OutputPath = probed, MaxBatch = 3 });
        output.WriteLine(report.FormatTable());

        Assert.True(report.SubBatches);
        Assert.Equal(2, report.Rows.Count);
        var written = RunConfig.Load(probed);
        Assert.Equal(report.Rows.Select(r => r.SubBatch!.Value), written.Train.SubBatchSizes);
        Assert.Null(written.Train.SubBatchSize);
        Assert.Equal([2, 2], written.Data.BatchSizes);
        Assert.Equal(1, UnifiedFinetuneRecipe.Run(written).Steps);
    }

    [Fact]
    public void OnASimulatedGpuEachLongBinGetsItsOwnSubBatch()
    {
        // BGE-M3's reference batches (8 queries x 8 passages in the last bin, up to 8192 tokens): GradCache memory grows
        // with the tokens of one sub-batch, so the long bins take fewer texts at a time, each bin its own.
        var config = new RunConfig
        {
            Data = new DataConfig { PassageMaxLen = 8192 },
            Train = new TrainConfig { SubBatchSizes = [.. Enumerable.Repeat(1, 9)] },
        };
        var bins = ProbeBin.Of(config.Data, 8192);
        const long Base = 20L << 30, Limit = 72L << 30;
        ProbeTrialResult Fake(ProbeTrial t) => new(false, Base + (long)t.SubBatch!.Value * t.PassageLength * 500_000L, 1.0);
        var probe = new BatchSizeProbe.Probe(config, bins, new BatchProbeOptions { OutputPath = "unused.yaml" });
        var rows = probe.Search(Fake, Limit, "72 GiB", max: 4096);

        Assert.True(probe.PerBin);
        var sizes = rows.Select(r => r.SubBatch!.Value).ToList();
        output.WriteLine($"sub-batches per bin: {string.Join(", ", sizes)}");
        Assert.True(sizes.Zip(sizes.Skip(1)).All(p => p.First >= p.Second), "longer bins get smaller sub-batches");
        Assert.True(sizes[0] > sizes[^1]);
        Assert.All(rows, r => Assert.True(Base + (long)r.SubBatch!.Value * r.Bin.PassageLength * 500_000L <= Limit));
    }

    [Fact]
    public void TooSmallAMemoryShareSaysWhatToChange()
    {
        using var folder = new DataTestFolder();
        var config = RunConfig.Load(WriteConfig(folder));
        // Earlier tests' garbage, collected during the probe, would lower the RSS below the probe's starting point.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var e = Assert.Throws<M3TrainException>(() => BatchSizeProbe.Run(config,
            new BatchProbeOptions { OutputPath = Path.Combine(folder.Path, "probed.yaml"), MemoryFraction = 1e-9, MaxBatch = 2 }));
        Assert.Contains("even one query with its 2 passages does not fit", e.Message);
        Assert.Contains("train.sub_batch_size", e.Message);
        Assert.False(File.Exists(Path.Combine(folder.Path, "probed.yaml")));
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task TheVerbPrintsTheTableAndRunsTrialsInAChildProcess()
    {
        using var folder = new DataTestFolder();
        string config = WriteConfig(folder);
        string m3train = Path.Combine(AppContext.BaseDirectory, "m3train.dll");

        // The child-process protocol that CUDA probes use, here on CPU.
        var trial = new ProbeTrialProcess(["dotnet", m3train, "probe-batch"]).Run(config, new ProbeTrial(16, 48, 2, null));
        Assert.False(trial.OutOfMemory);
        Assert.True(trial.PeakBytes > 0);
        Assert.True(trial.StepSeconds > 0);

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])[m3train, "probe-batch", "--config", config, "--max-batch", "2"]) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var ct = TestContext.Current.CancellationToken;
        var stdoutTask = process.StandardOutput.ReadToEndAsync(ct);
        var stderrTask = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        string stdout = await stdoutTask, stderr = await stderrTask;
        output.WriteLine(stdout);
        Assert.True(process.ExitCode == 0, stderr);
        string probed = Path.Combine(folder.Path, "probe.probed.yaml");
        Assert.Contains("bin  tokens", stdout);
        Assert.Contains($"Written to {probed}", stdout);
        Assert.Contains("peak RSS", stderr);
        Assert.Equal(2, RunConfig.Load(probed).Data.BatchSizes.Count);
    }
}
