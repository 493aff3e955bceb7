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
    public void TheFitIsALineThroughTwoSizesAndAParabolaThroughThree()
    {
        var line = QuadraticFit.Of([(1, 110), (2, 120)]);
        Assert.Equal((100, 10, 0), (line.A, line.B, line.C));
        Assert.Equal(7, line.LargestWithin(175, 1024));
        Assert.Equal(5, line.LargestWithin(175, 5));
        Assert.Equal(0, line.LargestWithin(105, 1024));

        var parabola = QuadraticFit.Of([(1, 112), (2, 128), (4, 172)]); // 100 + 10 n + 2 n²
        Assert.Equal(100, parabola.A, 6);
        Assert.Equal(10, parabola.B, 6);
        Assert.Equal(2, parabola.C, 6);
        Assert.Equal(10, parabola.LargestWithin(400, 1024));        // 400 exactly at 10
        Assert.Equal(9, parabola.LargestWithin(399.9, 1024));

        var flat = QuadraticFit.Of([(1, 50), (2, 50)]);
        Assert.Equal(64, flat.LargestWithin(60, 64));
        Assert.Equal(0, flat.LargestWithin(40, 64));
        Assert.Throws<ArgumentException>(() => QuadraticFit.Of([(2, 1), (2, 3)]));
    }

    [Fact]
    public void AParabolaBendingDownIsReplacedByTheLineThroughItsTwoLargestSizes()
    {
        var fit = QuadraticFit.Of([(1, 100), (2, 150), (4, 180)]);
        Assert.Equal(0, fit.C);
        Assert.Equal(15, fit.B, 9);         // (180 - 150) / (4 - 2)
        Assert.Equal(180, fit.At(4), 9);
    }

    [Fact]
    public void OnTheIssuesMeasurementsALineOvershootsAndTheParabolaDoesNot()
    {
        const double MiB = 1 << 20;
        (double, double)[] measured = [(8, 225 * MiB), (32, 403 * MiB), (128, 2490 * MiB)];
        // A line through the two smaller sizes (the earlier probe's) allows batch ~964 within 7.2 GiB, where the
        // memory actually measured grows with the square: the parabola puts 964 near 108 GiB and allows ~234.
        var line = QuadraticFit.Of(measured[..2]);
        var parabola = QuadraticFit.Of(measured);
        double limit = 7.2 * 1024 * MiB;
        Assert.InRange(line.LargestWithin(limit, 4096), 900, 1100);
        Assert.InRange(parabola.At(964) / (1024 * MiB), 100, 115);
        Assert.InRange(parabola.LargestWithin(limit, 4096), 200, 260);
        Assert.True(parabola.At(128) <= 2490 * MiB + 1);
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
    public void DeviceSearchNeverGoesAboveTheRowsOfABinAndLeavesAnEmptyBinUnprobed()
    {
        var config = new RunConfig { Data = new DataConfig { BinEdges = [64, 128], BatchSizes = [1, 1, 1], PassageMaxLen = 256 } };
        var bins = ProbeBin.Of(config.Data, 8192);
        var trials = new List<ProbeTrial>();
        ProbeTrialResult Fits(ProbeTrial t)
        {
            trials.Add(t);
            return new ProbeTrialResult(false, 1L << 30, 0.01);   // every size fits: only the rows bound the batch
        }
        var probe = new BatchSizeProbe.Probe(config, bins, new BatchProbeOptions { OutputPath = "unused.yaml" }, rowCaps: [37, 0, 5]);
        var rows = probe.Search(Fits, 80L << 30, "80 GiB", max: 4096);

        Assert.Equal((37, ProbeEvidence.Measured), (rows[0].Batch, rows[0].Evidence));
        Assert.Equal((37, ProbeEvidence.NoRows, (long?)null), (rows[1].Batch, rows[1].Evidence, rows[1].PeakBytes));
        Assert.Equal((5, ProbeEvidence.Measured), (rows[2].Batch, rows[2].Evidence));
        Assert.DoesNotContain(trials, t => t.PassageLength == bins[1].PassageLength);
        Assert.All(trials, t => Assert.True(t.Batch <= 37));
        Assert.Contains("no rows", new BatchProbeReport("x", false, 1, "x", rows, config, "x").FormatTable());
    }

    [Fact]
    public void OnCpuOnlySizesThatRanAreWrittenAndNoneAboveTheRowsOfTheirBin()
    {
        using var folder = new DataTestFolder();
        var config = RunConfig.Load(WriteConfig(folder), ["data.bin_edges=[40]"]);
        string probed = Path.Combine(folder.Path, "probed.yaml");
        // Counted as the batch plan counts them: the most rows one dataset holds in each bin.
        int[] most = new int[2];
        using (var data = TrainData.Load(config.Data, M3Train.Text.XlmrTokenizer.FromFolder(config.Model.Path)))
            foreach (var dataset in data.Datasets)
                for (int b = 0; b < 2; b++)
                    most[b] = Math.Max(most[b], Enumerable.Range(0, dataset.Count).Count(r => BatchPlan.BinOf(dataset.RowLength(r, config.Data), config.Data.BinEdges) == b));
        output.WriteLine($"rows per bin: {string.Join(", ", most)}");
        Assert.True(most.Min() < 64, "the data should bound a bin below --max-batch");

        // Verifying nothing (no predicted step time is below -1 s): only the first two sizes ran, and the larger within
        // the limit is written, not the fit's prediction.
        var report = BatchSizeProbe.Run(config, new BatchProbeOptions { OutputPath = probed, MaxBatch = 64, VerifyWithinSeconds = -1 });
        output.WriteLine(report.FormatTable());
        foreach (var row in report.Rows)
        {
            Assert.Contains(row.Evidence, new[] { ProbeEvidence.Measured, ProbeEvidence.NoRows });
            Assert.True(row.Batch <= Math.Max(2, most[row.Bin.Index]), $"bin {row.Bin.Index}: {row.Batch} > {most[row.Bin.Index]} rows");
        }
        Assert.Equal(report.Rows.Select(r => r.Batch), RunConfig.Load(probed).Data.BatchSizes);

        // Verifying freely: the sizes grow until the rows of the bin bound them.
        report = BatchSizeProbe.Run(config, new BatchProbeOptions { OutputPath = probed, MaxBatch = 64 });
        output.WriteLine(report.FormatTable());
        Assert.Contains(report.Rows, r => r.Batch == Math.Min(64, most[r.Bin.Index]));
        Assert.All(report.Rows, r => Assert.True(r.Batch <= Math.Max(1, most[r.Bin.Index]) || r.Evidence == ProbeEvidence.NoRows));
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
        // No row of the data is short enough for bin 0: it is not probed.
        Assert.Equal(ProbeEvidence.NoRows, report.Rows[0].Evidence);
        foreach (var row in report.Rows.Skip(1))
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
