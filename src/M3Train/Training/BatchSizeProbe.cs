using System.Globalization;
using M3Train.Checkpoints;
using M3Train.Config;
using M3Train.Data;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// <c>m3train probe-batch</c>: the largest per-replica batch of each length bin (or, with <c>train.sub_batch_size</c>
/// or <c>train.sub_batch_sizes</c> set, the largest GradCache sub-batch at the configured batches: the smallest of them as
/// <c>sub_batch_size</c>, or each bin's as <c>sub_batch_sizes</c>) whose training step fits in a share of the memory,
/// found with trial steps at the bin's longest lengths on the run's device and precision, written into a copy of the
/// config that <c>finetune</c> and <c>pretrain</c> take.
/// <code>
/// CUDA: per bin, search the size (from 1 doubling, or from the last bin's result scaled by its tokens in steps
///       of 1.25, then bisect to within 1/32); a size fits when its trial, run in a child process, neither runs out
///       of memory nor takes more than fraction × the device's memory
/// CPU:  warm-up step, then per bin: peak RSS of sizes 1 and 2 → a line (later a parabola through the three measured
///       sizes nearest the answer: memory grows with the square of the batch) → the largest size within
///       fraction × MemAvailable → run it, at most 4 times the last size within the limit; repeat until within 1/32
///       (at most 8 runs). A size whose step would take longer than the verify time is not run and not written.
/// </code>
/// Only sizes that ran within the limit are written. Every search is capped by max-batch and, per bin, by the most rows
/// one dataset of <c>data.files</c> holds in it per replica (a larger batch never forms); a bin no row falls in is not
/// probed and keeps the previous bin's size. Bins with the same lengths as an earlier one take its result.
/// </summary>
public static class BatchSizeProbe
{
    public const int CpuMaxBatch = 1024, CudaMaxBatch = 4096;

    /// <summary>On CPU, how many predicted sizes a bin may run to verify and refine its prediction.</summary>
    const int RefineRounds = 8;

    /// <summary>A size is final once the next one known not to fit is within this share of it (each GPU trial is a process).</summary>
    const double SearchTolerance = 1.0 / 32;

    /// <summary>FILE.yaml → FILE.probed.yaml beside it.</summary>
    public static string DefaultOutputPath(string configPath) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(configPath))!, Path.GetFileNameWithoutExtension(configPath) + ".probed.yaml");

    public static BatchProbeReport Run(RunConfig config, BatchProbeOptions options)
    {
        if (!(options.MemoryFraction > 0 && options.MemoryFraction <= 1))
            throw new M3TrainException($"--memory-fraction {options.MemoryFraction.ToString(CultureInfo.InvariantCulture)}: expected a share in (0, 1].");
        if (options.MaxBatch is < 1) throw new M3TrainException($"--max-batch {options.MaxBatch}: expected at least 1.");
        string deviceSpec = options.Device ?? (config.Train.Devices.Count > 0 ? config.Train.Devices[0] : config.Train.Device);
        var device = TorchDevices.Resolve(deviceSpec);
        string modelConfig = Path.Combine(config.Model.Path, M3Keys.ConfigFile);
        if (!File.Exists(modelConfig)) throw new M3TrainException($"model.path: {modelConfig} does not exist; model.path must be a checkpoint folder.");
        int modelMax = XlmRobertaConfig.Load(modelConfig).MaxTokens;
        if (Math.Max(config.Data.QueryMaxLen, config.Data.PassageMaxLen) > modelMax)
            Log.Warning("The model takes at most {Max} tokens per text: longer maximum lengths are probed at {Max}", modelMax, modelMax);
        ComputeThreads.Apply(config.Train.Threads, hostThreads: 0, "train.threads");
        var bins = ProbeBin.Of(config.Data, modelMax);
        var probe = new Probe(config, bins, options, RowsPerBin(config, bins.Count));
        if (probe.SubBatches)
            Log.Information("{Key} is set: probing the largest GradCache sub-batch at each bin's configured batch ({Batches})",
                probe.PerBin ? "train.sub_batch_sizes" : "train.sub_batch_size", string.Join(", ", probe.FixedBatches));

        var (rows, limitBytes, limit, deviceName) = device.type == DeviceType.CUDA
            ? probe.OnDevice(device, deviceSpec)
            : probe.OnHost();

        RunConfig probed;
        string what;
        if (probe.PerBin)
        {
            var sizes = rows.Select(r => r.SubBatch!.Value).ToList();
            probed = config with { Train = config.Train with { SubBatchSizes = sizes } };
            what = "train.sub_batch_sizes, the largest GradCache sub-batch of each length bin";
        }
        else if (probe.SubBatches)
        {
            int sub = rows.Min(r => r.SubBatch!.Value);
            probed = config with { Train = config.Train with { SubBatchSize = sub } };
            what = $"train.sub_batch_size {sub}, the smallest of the bins' largest sub-batches";
        }
        else
        {
            if (config.Data.TokensPerBatch is not null)
                Log.Information("data.tokens_per_batch is left out of the written config: the probed data.batch_sizes replace it");
            probed = config with { Data = config.Data with { BatchSizes = rows.Select(r => r.Batch).ToList(), TokensPerBatch = null } };
            what = "data.batch_sizes, the largest per-replica batch of each length bin";
        }
        string output = Path.GetFullPath(options.OutputPath);
        AtomicFile.WriteAllText(output,
            $"# m3train finetune --config {options.OutputPath}\n" +
            $"# {what}, found by m3train probe-batch on {deviceName}\n" +
            $"# ({DateTime.Now:yyyy-MM-dd}), within {limit}.\n" +
            ConfigWriter.ToYaml(probed));
        Log.Information("Wrote {Output}", output);
        return new BatchProbeReport(deviceName, probe.SubBatches, limitBytes, limit, rows, probed, output);
    }

    /// <summary>
    /// The child-process side of a CUDA probe (<c>--trial</c>): two steps of <paramref name="trial"/> on the config's
    /// device (the first also allocates gradients and AdamW's state), measured; an out-of-memory error is a result.
    /// </summary>
    public static ProbeTrialResult RunTrial(RunConfig config, ProbeTrial trial)
    {
        var device = TorchDevices.Resolve(config.Train.Device);
        ComputeThreads.Apply(config.Train.Threads, hostThreads: 0, "train.threads");
        try
        {
            using var session = new ProbeStepSession(config, device);
            return session.Measure(trial, steps: 2);
        }
        catch (Exception e) when (Trainer.IsOutOfMemory(e))
        {
            return ProbeTrialResult.OutOfMemoryResult;
        }
    }

    /// <summary>
    /// Per bin, the most rows one dataset of <c>data.files</c> holds in it, per replica: a batch larger than that never
    /// forms (the plan leaves incomplete batches out). Null when the config names no data.
    /// </summary>
    static int[]? RowsPerBin(RunConfig config, int bins)
    {
        if (config.Data.Files.Count == 0)
        {
            Log.Information("data.files is empty: batches are bounded by memory and --max-batch only, not by the rows of each bin");
            return null;
        }
        XlmrTokenizer tokenizer;
        try
        {
            tokenizer = XlmrTokenizer.FromFolder(config.Model.Path);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
        {
            throw new M3TrainException($"model.path: {e.Message}", e);
        }
        using var data = TrainData.Load(config.Data, tokenizer);
        int replicas = config.Train.Devices switch
        {
            [] => 1,
            ["cuda"] => Math.Max(1, torch.cuda.is_available() ? torch.cuda.device_count() : 1),
            var devices => devices.Count,
        };
        var most = new int[bins];
        foreach (var dataset in data.Datasets)
        {
            var rows = new int[bins];
            for (int r = 0; r < dataset.Count; r++) rows[BatchPlan.BinOf(dataset.RowLength(r, config.Data), config.Data.BinEdges)]++;
            for (int b = 0; b < bins; b++) most[b] = Math.Max(most[b], rows[b] / replicas);
        }
        return most;
    }

    /// <summary>One probe's inputs and the per-bin searches.</summary>
    /// <param name="rowCaps">Per bin, the largest batch the data can fill (<see cref="RowsPerBin"/>); null: no bound.</param>
    internal sealed class Probe(RunConfig config, IReadOnlyList<ProbeBin> bins, BatchProbeOptions options, IReadOnlyList<int>? rowCaps = null)
    {
        public bool SubBatches { get; } = config.Train.SubBatchSize is not null || config.Train.SubBatchSizes.Count > 0;

        /// <summary>Sub-batches are probed to fill <c>train.sub_batch_sizes</c>, one per bin.</summary>
        public bool PerBin { get; } = config.Train.SubBatchSizes.Count > 0;

        /// <summary>The configured per-replica batch of each bin, at which sub-batches are probed.</summary>
        public int[] FixedBatches { get; } = config.Train.SubBatchSize is not null || config.Train.SubBatchSizes.Count > 0
            ? BatchPlan.ReplicaBatchSizes(config.Data, RowKind.Group) : [];

        int Group => config.Data.TrainGroupSize;

        /// <summary>The trial of size <paramref name="n"/>: a batch of n queries, or a sub-batch of n texts at the bin's batch.</summary>
        ProbeTrial Trial(ProbeBin bin, int n) => SubBatches
            ? new ProbeTrial(bin.QueryLength, bin.PassageLength, FixedBatches[bin.Index], n)
            : new ProbeTrial(bin.QueryLength, bin.PassageLength, n, null);

        /// <summary>Tokens that one more unit of size adds to a step: a query with its passages, or one text of a sub-batch.</summary>
        double TokensPerUnit(ProbeBin bin) => SubBatches ? bin.PassageLength : bin.QueryLength + Group * (double)bin.PassageLength;

        /// <summary>A sub-batch larger than the batch's passages encodes them all at once, as the largest does.</summary>
        int MaxFor(ProbeBin bin, int max) => SubBatches ? Math.Min(max, FixedBatches[bin.Index] * Group) : max;

        BatchProbeRow Row(ProbeBin bin, int n, long? peak, double? seconds, ProbeEvidence evidence) => SubBatches
            ? new BatchProbeRow(bin, FixedBatches[bin.Index], n, peak, seconds, evidence)
            : new BatchProbeRow(bin, n, null, peak, seconds, evidence);

        /// <summary>The most rows one dataset holds in the bin per replica; no bound for sub-batches (the batch is fixed) or without data.</summary>
        int RowCap(ProbeBin bin) => SubBatches || rowCaps is null ? int.MaxValue : rowCaps[bin.Index];

        /// <summary>
        /// The row of a bin before any search: an earlier bin's result when it has the same lengths, or, when no row of
        /// the data falls in it, the previous bin's size (its batches never form; a larger size would not fit anyway).
        /// </summary>
        BatchProbeRow? Settled(ProbeBin bin, List<BatchProbeRow> rows)
        {
            if (bin.SameAs is int same) return rows[same] with { Bin = bin, Evidence = ProbeEvidence.SameLengths };
            if (RowCap(bin) > 0) return null;
            var previous = rows.LastOrDefault();
            Log.Information("bin {Bin} {Range}: no row of the data falls in it; not probed, written as {Size}", bin.Index, bin.Range, previous?.Batch ?? 1);
            return new BatchProbeRow(bin, previous?.Batch ?? 1, null, null, null, ProbeEvidence.NoRows);
        }

        /// <summary>The largest size a bin's search tries: max-batch, the previous bin's result and the bin's rows.</summary>
        int BinMax(ProbeBin bin, int max, int? previous)
        {
            int binMax = SubBatches ? MaxFor(bin, max) : Math.Min(max, previous ?? max);
            if (RowCap(bin) < binMax)
            {
                Log.Information("bin {Bin}: at most {Rows}, the most rows one dataset holds in it per replica", bin.Index, RowCap(bin));
                binMax = RowCap(bin);
            }
            return binMax;
        }

        M3TrainException DoesNotFit(ProbeBin bin, string limit) => new(SubBatches
            ? $"bin {bin.Index} {bin.Range} (query {bin.QueryLength}, passages {bin.PassageLength} tokens): even a sub-batch of one text at the configured batch of {FixedBatches[bin.Index]} queries does not fit within {limit}. Lower data.batch_sizes or data.passage_max_len, keep train.activation_checkpointing on, or use precision bf16 on a GPU."
            : $"bin {bin.Index} {bin.Range} (query {bin.QueryLength}, passages {bin.PassageLength} tokens): even one query with its {Group} passages does not fit within {limit}. Set train.sub_batch_size (GradCache), keep train.activation_checkpointing on, lower data.passage_max_len, or use precision bf16 on a GPU.");

        public (List<BatchProbeRow>, long, string, string) OnDevice(Device device, string deviceSpec)
        {
            var gpu = CudaInfo.Devices().FirstOrDefault(g => g.Index == device.index)
                ?? throw new M3TrainException($"--device {deviceSpec}: the CUDA driver does not report this device's memory.");
            long limitBytes = (long)(options.MemoryFraction * gpu.TotalBytes);
            string limit = $"{options.MemoryFraction.ToString(CultureInfo.InvariantCulture)} x {BatchProbeReport.Bytes(gpu.TotalBytes)} = {BatchProbeReport.Bytes(limitBytes)} of device memory in use";
            var trials = options.TrialRunner
                ?? throw new InvalidOperationException("Probing on CUDA runs each trial in a child process: set BatchProbeOptions.TrialRunner.");
            var child = config with { Train = config.Train with { Device = deviceSpec, Devices = [] } };
            return (Search(trial => trials.Run(child, trial), limitBytes, limit, options.MaxBatch ?? CudaMaxBatch), limitBytes, limit, $"{deviceSpec} ({gpu.Name})");
        }

        /// <summary>
        /// Per bin, the largest size whose trial (<paramref name="run"/>) neither runs out of memory nor peaks above
        /// <paramref name="limitBytes"/>: doubling from the last bin's result (or 1), then bisecting.
        /// </summary>
        internal List<BatchProbeRow> Search(Func<ProbeTrial, ProbeTrialResult> run, long limitBytes, string limit, int max)
        {
            bool warnedNoPeak = false;
            var rows = new List<BatchProbeRow>();
            (int Size, double Tokens)? previous = null;
            foreach (var bin in bins)
            {
                if (Settled(bin, rows) is { } settled)
                {
                    rows.Add(settled);
                    continue;
                }
                var seen = new Dictionary<int, ProbeTrialResult>();
                bool Fits(int n)
                {
                    var trial = Trial(bin, n);
                    var r = seen[n] = run(trial);
                    if (r.PeakBytes is null && !r.OutOfMemory && !warnedNoPeak)
                    {
                        warnedNoPeak = true;
                        Log.Warning("Device memory in use cannot be read here (no NVML or driver figure): only out-of-memory errors bound the batch, not the memory fraction");
                    }
                    bool fits = !r.OutOfMemory && (r.PeakBytes is not long p || p <= limitBytes);
                    Log.Information("bin {Bin}: {Trial}: {Outcome}", bin.Index, trial,
                        r.OutOfMemory ? "out of memory"
                        : $"peak {(r.PeakBytes is long q ? BatchProbeReport.Bytes(q) : "?")}{(fits ? "" : " over the limit")}, {r.StepSeconds:0.000} s");
                    return fits;
                }
                // Longer texts never fit a larger batch, so the last bin's batch bounds this one's; sub-batches are
                // probed at a different batch per bin, so there it bounds nothing. The first guess keeps the tokens of
                // the last bin's step.
                int binMax = BinMax(bin, max, previous?.Size);
                int guess = previous is var (size, tokens) ? (int)(size * tokens / TokensPerUnit(bin)) : 1;
                int n = BatchSearch.Largest(guess, binMax, Fits, SearchTolerance, growth: previous is null ? 2 : 1.25);
                if (n == 0) throw DoesNotFit(bin, limit);
                previous = (n, TokensPerUnit(bin));
                rows.Add(Row(bin, n, seen[n].PeakBytes, seen[n].StepSeconds, ProbeEvidence.Measured));
            }
            return rows;
        }

        public (List<BatchProbeRow>, long, string, string) OnHost()
        {
            MemoryProbe.TrimHostHeap();
            long held = MemoryProbe.HostRssBytes() ?? throw new M3TrainException("Probing on CPU reads the process's memory from /proc/self/status, which this system does not have.");
            long available = MemoryProbe.HostAvailableBytes() ?? throw new M3TrainException("Probing on CPU reads MemAvailable from /proc/meminfo, which this system does not have.");
            long limitBytes = held + (long)(options.MemoryFraction * available);
            string limit = $"{options.MemoryFraction.ToString(CultureInfo.InvariantCulture)} x {BatchProbeReport.Bytes(available)} available + {BatchProbeReport.Bytes(held)} held = {BatchProbeReport.Bytes(limitBytes)} peak RSS";
            int max = options.MaxBatch ?? CpuMaxBatch;

            using var session = new ProbeStepSession(config, CPU);
            Log.Information("Probing on CPU against {Limit}: warm-up step (allocates gradients and optimizer state)", limit);
            session.Step(Trial(bins[0], 1));
            if (!MemoryProbe.ResetHostPeak())
                Log.Warning("The peak RSS cannot be reset here (/proc/self/clear_refs): each trial's peak includes the earlier ones, so the sizes found are conservative");

            var rows = new List<BatchProbeRow>();
            int? previous = null;
            foreach (var bin in bins)
            {
                if (Settled(bin, rows) is { } settled)
                {
                    rows.Add(settled);
                    continue;
                }
                // As on CUDA: a longer bin never fits a larger batch than a shorter one.
                int binMax = BinMax(bin, max, previous);
                var measured = new SortedDictionary<int, ProbeTrialResult>();
                ProbeTrialResult Measure(int n)
                {
                    var r = session.Measure(Trial(bin, n), steps: 1);
                    // The resident set can shrink below what it was when probing began (freed heap handed back, garbage
                    // collected), so a trial counts at least what it added on top of the memory held at the start.
                    r = measured[n] = r with { PeakBytes = Math.Max(r.PeakBytes!.Value, held + (r.GrowthBytes ?? 0)) };
                    Log.Information("bin {Bin}: {Trial}: peak RSS {Peak}, {Seconds:0.000} s", bin.Index, Trial(bin, n), BatchProbeReport.Bytes(r.PeakBytes!.Value), r.StepSeconds);
                    return r;
                }
                if (Measure(1).PeakBytes > limitBytes) throw DoesNotFit(bin, limit);
                int lo = 1, hi = binMax + 1; // lo ran within the limit; hi ran over it (binMax + 1: none did)
                if (binMax >= 2)
                {
                    if (Measure(2).PeakBytes <= limitBytes) lo = 2;
                    else hi = 2;
                }
                for (int round = 0; round < RefineRounds && hi - lo > Math.Max(1, (int)(lo * SearchTolerance)); round++)
                {
                    var near = Nearest(measured, lo, hi);
                    var memory = Fit(measured, near, r => r.PeakBytes!.Value);
                    var time = Fit(measured, near, r => r.StepSeconds!.Value);
                    int predicted = Math.Clamp(memory.LargestWithin(limitBytes, hi - 1), lo, hi - 1);
                    if (predicted == lo) break;
                    Log.Information("bin {Bin}: peak RSS ≈ {A} + {B}·n + {C}·n² for n {Unit}, fitted at {Sizes}: {Predicted} within the limit{Capped}", bin.Index,
                        BatchProbeReport.Bytes((long)memory.A), BatchProbeReport.Bytes((long)memory.B), BatchProbeReport.Bytes((long)memory.C),
                        SubBatches ? "sub-batch texts" : "queries", string.Join(", ", near), predicted, predicted == binMax ? $" (capped at {binMax})" : "");
                    // Far from the measured sizes a fit errs most: grow at most 4-fold per run, so that an overshoot
                    // stays small enough not to swap.
                    int next = Math.Min(predicted, lo * 4);
                    if (time.At(next) > options.VerifyWithinSeconds)
                    {
                        Log.Information("bin {Bin}: {Next} is not run (its step would take about {Seconds:0} s), so {Lo}, the largest size run within the limit, is written",
                            bin.Index, next, time.At(next), lo);
                        break;
                    }
                    if (Measure(next).PeakBytes <= limitBytes) lo = next;
                    else hi = next;
                }
                var row = Row(bin, lo, measured[lo].PeakBytes, measured[lo].StepSeconds, lo > 2 ? ProbeEvidence.Verified : ProbeEvidence.Measured);
                previous = row.SubBatch ?? row.Batch;
                rows.Add(row);
            }
            return (rows, limitBytes, limit, "cpu");
        }

        /// <summary>
        /// The measured sizes to fit near the answer: the largest within the limit, the smallest over it (when one ran),
        /// and the largest below, to three.
        /// </summary>
        static int[] Nearest(SortedDictionary<int, ProbeTrialResult> measured, int lo, int hi)
        {
            var near = new List<int> { lo };
            if (measured.ContainsKey(hi)) near.Add(hi);
            near.AddRange(measured.Keys.Where(k => k < lo).OrderDescending().Take(3 - near.Count));
            return [.. near.Order()];
        }

        static QuadraticFit Fit(SortedDictionary<int, ProbeTrialResult> measured, int[] sizes, Func<ProbeTrialResult, double> y) =>
            QuadraticFit.Of(sizes.Select(n => ((double)n, y(measured[n]))).ToList());
    }
}
