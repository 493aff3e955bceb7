using System.Diagnostics;
using M3Train.Checkpoints;
using M3Train.Config;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>How a <see cref="Trainer"/> run is started.</summary>
public sealed record TrainerOptions
{
    /// <summary><c>--resume</c>: null starts fresh; "latest" or a checkpoint folder continues it.</summary>
    public string? Resume { get; init; }

    /// <summary>Recipe name for logs and the summary (finetune, pretrain-retromae, ...).</summary>
    public string Recipe { get; init; } = "finetune";

    /// <summary>Load the masked-LM head with the model (RetroMAE needs it).</summary>
    public bool WithLmHead { get; init; }

    /// <summary>Test seam: a micro-step whose loss is replaced by NaN (fault-handling tests).</summary>
    public Func<long, bool>? InjectNonFiniteLoss { get; init; }

    /// <summary>Test seam: replica r fails at a micro-step (fault-handling tests).</summary>
    public Func<int, long, bool>? InjectReplicaFailure { get; init; }
}

/// <summary>What a finished (or stopped) run reports; the losses are means over the first and last tenth of the steps this invocation ran.</summary>
public sealed record TrainerResult(int Steps, int TotalSteps, long SkippedSteps, double FirstLoss, double LastLoss,
    string OutputDirectory, string? FinalModel, bool Stopped);

/// <summary>
/// The training loop shared by every recipe: replicas on the configured devices, the seed-synchronized data
/// loaders, AdamW with warmup/decay, gradient accumulation, clipping, checkpoints every N steps (HF folder +
/// optimizer + trainer state, atomic, last K kept), exact resume, metrics.jsonl / TensorBoard / progress,
/// non-finite losses skipped and counted, SIGINT/SIGTERM saving a checkpoint before exiting.
/// <code>
/// setup: config → devices → model replicas (checkpoint or resume) → freeze → data → optimizer → resume state
/// loop:  for step: lr(step); accumulate micro-batches (objective.Backward); reduce grads; clip; check finite;
///        AdamW step; broadcast weights; log; checkpoint
/// end:   checkpoint + OUTPUT/final (HF/FlagEmbedding-loadable)
/// </code>
/// </summary>
public sealed class Trainer : IDisposable
{
    RunConfig _config;
    readonly TrainerOptions _options;
    readonly string _output;
    readonly CheckpointManager _checkpoints;
    readonly List<TrainDataLoader> _loaders = [];
    readonly TrainData _data;
    readonly AdamW _optimizer;
    readonly List<(string Name, Parameter Param)> _trainable;
    readonly LrSchedule _schedule;
    readonly string _modelSource;
    readonly CheckpointLayout _layout;
    readonly List<M3Checkpoint> _loaded = [];
    TrainerState _state;

    public ReplicaSet<M3Model> Replicas { get; }
    public XlmrTokenizer Tokenizer { get; }
    public ITrainingObjective Objective { get; }
    public RunConfig Config => _config;
    public int TotalSteps => _schedule.TotalSteps;

    public Trainer(RunConfig config, TrainerOptions options, Func<Trainer, ITrainingObjective> objective)
    {
        _config = config;
        _options = options;
        _output = Path.GetFullPath(config.OutputDir);
        _checkpoints = new CheckpointManager(_output, config.Train.KeepLast);
        string? resumeDir = options.Resume is null ? null : _checkpoints.ResolveResume(options.Resume);
        _state = resumeDir is null ? new TrainerState() : TrainerState.Load(resumeDir);
        if (resumeDir is null && Directory.Exists(_checkpoints.Root) && _checkpoints.List().Count > 0)
            throw new M3TrainException($"{_output} already holds checkpoints of a run: pass --resume latest to continue it, or choose another output_dir.");

        TrainingPreflight.CreateOutputDirectory(_output);
        RunLogging.Configure(_output);
        File.WriteAllText(Path.Combine(_output, "config.yaml"), ConfigWriter.ToYaml(config));
        Log.Information("m3train {Recipe}: resolved config\n{Config}", options.Recipe, ConfigWriter.ToYaml(config));
        if (BuildInfo.TorchSharpPatchWarning() is { } unpatched) Log.Warning("{Warning}", unpatched);

        var devices = ResolveDevices(config.Train);
        _modelSource = resumeDir ?? config.Model.Path;
        if (resumeDir is not null)
        {
            Log.Information("Resuming from {Checkpoint} at step {Step}", resumeDir, _state.Step);
            CheckpointManager.WarnConfigChanges(resumeDir, config);
        }
        torch.manual_seed(config.Train.Seed);
        var replicas = new List<M3Model>();
        foreach (var device in devices)
        {
            // Heads missing from the checkpoint are initialized from the run seed, identically on every replica.
            torch.manual_seed(config.Train.Seed);
            var checkpoint = M3Checkpoint.Load(_modelSource, new M3CheckpointLoadOptions
            {
                AllowMissing = config.Model.AllowMissingKeys,
                AllowUnexpected = config.Model.AllowUnexpectedKeys,
                ColbertDim = config.Model.ColbertDim,
                WithLmHead = options.WithLmHead,
                RequireHeads = resumeDir is not null,
            });
            _loaded.Add(checkpoint);
            var model = checkpoint.Model;
            Prepare(model, config, device);
            replicas.Add(model);
        }
        _layout = _loaded[0].Layout;
        Freeze(replicas, config);
        Replicas = new ReplicaSet<M3Model>(replicas, devices);
        Log.Information("Model {Source}: {Params:N0} parameters, {Trainable:N0} trainable, {Replicas} replica(s) on {Devices}, {Precision}, checkpointing {Ckpt}",
            _modelSource, replicas[0].parameters().Sum(p => p.numel()), replicas[0].parameters().Where(p => p.requires_grad).Sum(p => p.numel()),
            devices.Count, string.Join(", ", devices.Select(d => d.ToString())), replicas[0].Precision, config.Train.ActivationCheckpointing);

        Tokenizer = TrainingPreflight.Check(config, _loaded[0]);
        if (resumeDir is not null && _state.WorldSize != devices.Count)
            _config = config = config with { Data = KeepGlobalBatch(config.Data, _state.WorldSize, devices.Count) };
        _data = TrainData.Load(config.Data, Tokenizer);
        for (int r = 0; r < devices.Count; r++)
            _loaders.Add(new TrainDataLoader(_data, Tokenizer, config.Train.Seed, devices.Count, r, config.Train.SubBatchSize, _state.Loader));

        int accumulation = config.Train.GradientAccumulationSteps;
        int total = _state.ResolveTotalSteps(config.Train.MaxSteps ?? Math.Max(1, config.Train.Epochs * _loaders[0].StepsPerEpoch / accumulation));
        _schedule = LrSchedule.FromConfig(config.Train, total);

        Objective = objective(this);
        _trainable = Replicas.Master.named_parameters().Concat(Objective.ExtraParameters).Where(p => p.Item2.requires_grad).ToList();
        _optimizer = OptimizerFactory.Create(_trainable, config.Train);
        if (resumeDir is not null)
        {
            CheckpointManager.LoadOptimizer(_optimizer, resumeDir);
            Objective.Load(resumeDir);
        }
        Log.Information("Training {Total} steps ({PerEpoch} batches per epoch, accumulation {Acc}), warmup {Warmup} steps, peak lr {Lr}",
            total, _loaders[0].StepsPerEpoch, accumulation, _schedule.WarmupSteps, config.Train.Lr);
    }

    /// <summary>
    /// Per-replica batch sizes that keep the checkpointed run's global batch on another number of replicas, so the
    /// batch plan (and the position in it) stays the same.
    /// </summary>
    static DataConfig KeepGlobalBatch(DataConfig data, int before, int now)
    {
        if (data.TokensPerBatch is int budget)
        {
            if (budget * (long)before % now != 0)
                throw new M3TrainException($"resuming a {before}-replica run on {now}: data.tokens_per_batch {budget} x {before} does not split into {now} equal slices.");
            int scaled = (int)(budget * (long)before / now);
            Log.Warning("Resuming a {Before}-replica run on {Now} replicas: global batch kept, data.tokens_per_batch per replica {Old} -> {New}", before, now, budget, scaled);
            return data with { TokensPerBatch = scaled };
        }
        var sizes = data.BatchSizes.Select(s => s * before).ToList();
        if (sizes.Any(s => s % now != 0))
            throw new M3TrainException($"resuming a {before}-replica run on {now}: global batch sizes {string.Join(", ", sizes)} do not split into {now} equal slices; resume on a device count that divides them.");
        var perReplica = sizes.Select(s => s / now).ToList();
        Log.Warning("Resuming a {Before}-replica run on {Now} replicas: global batch kept, per-replica data.batch_sizes [{Old}] -> [{New}]",
            before, now, string.Join(", ", data.BatchSizes), string.Join(", ", perReplica));
        return data with { BatchSizes = perReplica };
    }

    static List<Device> ResolveDevices(TrainConfig train)
    {
        if (train.Devices.Count == 0) return [TorchDevices.Resolve(train.Device)];
        if (train.Devices is ["cuda"])
        {
            int n = torch.cuda.is_available() ? torch.cuda.device_count() : 0;
            if (n == 0) TorchDevices.Resolve("cuda");
            return Enumerable.Range(0, n).Select(i => torch.device(DeviceType.CUDA, i)).ToList();
        }
        return train.Devices.Select(TorchDevices.Resolve).ToList();
    }

    /// <summary>Moves a loaded model to its device and sets it up for training as the config says (shared with <see cref="BatchSizeProbe"/>).</summary>
    internal static void Prepare(M3Model model, RunConfig config, Device device)
    {
        model.to(device);
        model.Precision = ResolvePrecision(config.Train.Precision, device);
        model.GradientCheckpointing = config.Train.ActivationCheckpointing;
        model.NormalizeEmbeddings = config.Model.NormalizeEmbeddings;
        model.train();
    }

    static ComputePrecision ResolvePrecision(Precision p, Device device) => p switch
    {
        Precision.Bf16 => ComputePrecision.BFloat16,
        Precision.Fp32 => ComputePrecision.Float32,
        _ => device.type == DeviceType.CUDA ? ComputePrecision.BFloat16 : ComputePrecision.Float32,
    };

    internal static void Freeze(IEnumerable<M3Model> replicas, RunConfig config)
    {
        var frozen = config.Train.FrozenParts();
        var heads = config.Model.Heads;
        foreach (var model in replicas)
        {
            if (frozen.Contains("encoder"))
                foreach (var p in model.Encoder.parameters()) p.requires_grad_(false);
            // A head that is not trained keeps its weights bit for bit (and is still saved).
            if (frozen.Contains("sparse") || !heads.Contains(Losses.M3Head.Sparse))
                foreach (var p in model.SparseHead.parameters()) p.requires_grad_(false);
            if (frozen.Contains("colbert") || !heads.Contains(Losses.M3Head.Colbert))
                foreach (var p in model.ColbertHead.parameters()) p.requires_grad_(false);
            if (model.LmHead is { } lm && frozen.Contains("encoder"))
                foreach (var p in lm.parameters()) p.requires_grad_(false);
        }
    }

    /// <summary>Runs to the end of the schedule (or to a stop request) and saves the final model.</summary>
    public TrainerResult Run()
    {
        var train = _config.Train;
        using var stop = new StopSignal();
        using var metrics = new MetricsLog(_output, train.Tensorboard, _options.Resume is null ? -1 : _state.Step);
        using var progress = new ProgressDisplay(_options.Recipe, _schedule.TotalSteps);
        var clock = Stopwatch.StartNew();
        var history = new List<float>();
        IEnumerable<(string, double)> shownParts = [];
        var zeroShares = new Queue<double>();
        string? sparseAlarm = null;
        int badInARow = 0;
        var window = new MetricWindow();
        var trainableParams = _trainable.Select(p => p.Param).ToList();

        while (_state.Step < _schedule.TotalSteps)
        {
            if (stop.Requested)
            {
                Log.Warning("{Reason}: saving a checkpoint at step {Step} and stopping", stop.Reason, _state.Step);
                SaveCheckpoint();
                return Result(history, stopped: true, finalModel: null);
            }
            if (train.StopAfter is int limit && _state.Step >= limit) break;

            double lr = _schedule.At(_state.Step);
            OptimizerFactory.SetLr(_optimizer, lr);
            using var scope = NewDisposeScope();
            var sums = new Dictionary<string, Tensor>();
            long tokens = 0;
            var batchesOfStep = new List<IReadOnlyList<TrainBatch>>();
            bool logStep = (_state.Step + 1) % train.LogEvery == 0 || _state.Step + 1 == _schedule.TotalSteps;
            for (int micro = 0; micro < train.GradientAccumulationSteps; micro++)
            {
                if (logStep && micro == train.GradientAccumulationSteps - 1) Objective.RequestHealth();
                var batches = _loaders.Select(l => l.Next()).ToList();
                batchesOfStep.Add(batches);
                tokens += batches.Sum(Tokens);
                var parts = RunObjective(batches, _state.MicroStep);
                if (_options.InjectNonFiniteLoss?.Invoke(_state.MicroStep) == true)
                    parts = new Dictionary<string, Tensor>(parts) { ["loss"] = parts["loss"] * float.NaN };
                foreach (var (k, v) in parts)
                    sums[k] = sums.TryGetValue(k, out var s) ? s + v : v.clone();
                _state = _state with { MicroStep = _state.MicroStep + 1 };
            }
            var update = StepUpdate.Apply(Replicas, Objective, _optimizer, trainableParams, train.MaxGradNorm,
                sums["loss"] / train.GradientAccumulationSteps);
            float lossValue = update.Loss, normValue = update.GradNorm;
            if (!update.Applied)
            {
                badInARow++;
                _state = _state with { SkippedSteps = _state.SkippedSteps + 1 };
                Log.Warning("Step {Step}: non-finite {What} ({Loss}); update skipped ({Row} in a row, {Total} in all)",
                    _state.Step, float.IsFinite(lossValue) ? "gradient norm" : "loss", lossValue, badInARow, _state.SkippedSteps);
                if (badInARow >= train.MaxBadStepsInARow)
                {
                    SaveCheckpoint();
                    throw new M3TrainException(
                        $"{badInARow} non-finite losses in a row at step {_state.Step}: stopped. The last good weights are saved in {_checkpoints.Latest()}. " +
                        "Lower train.lr, check the data for empty or degenerate texts, or use precision fp32.");
                }
                continue;
            }
            badInARow = 0;

            int step = _state.Step + 1;
            _state = _state with
            {
                Step = step,
                TotalSteps = _schedule.TotalSteps,
                Loader = _loaders[0].Position,
                WorldSize = _loaders.Count,
                TokensSeen = _state.TokensSeen + tokens,
                TrainSeconds = _state.TrainSeconds + clock.Elapsed.TotalSeconds,
            };
            clock.Restart();
            history.Add(lossValue);
            window.Add(lossValue, tokens);

            if (step % train.LogEvery == 0 || step == _schedule.TotalSteps)
            {
                var values = sums.ToDictionary(kv => kv.Key, kv => (double)(kv.Value / train.GradientAccumulationSteps).cpu().item<float>());
                values["lr"] = lr;
                values["grad_norm"] = normValue;
                values["tokens_per_s"] = window.TokensPerSecond;
                values["masked_negatives"] = batchesOfStep.Sum(b => b[0].Passages is null ? 0 : M3BatchLoss.MaskedColumns(b));
                values["skipped_steps"] = _state.SkippedSteps;
                foreach (var (k, v) in Objective.TakeHealth()) values[k] = v;
                sparseAlarm = SparseZeroAlarm(values, zeroShares, step) ?? (zeroShares.Count == 0 ? null : sparseAlarm);
                metrics.Write(step, values);
                shownParts = values.Where(kv => kv.Key.StartsWith("loss_", StringComparison.Ordinal))
                    .Select(kv => (kv.Key[5..], kv.Value)).ToList();
                Log.Information("step {Step}/{Total} loss {Loss:F4} lr {Lr:E2} grad_norm {Norm:F3} {Tps:F0} tokens/s",
                    step, _schedule.TotalSteps, values["loss"], lr, normValue, window.TokensPerSecond);
            }
            progress.Update(step, [("loss", window.MeanLoss), .. shownParts, ("lr", lr), ("tok/s", window.TokensPerSecond)], sparseAlarm);
            if (train.SaveEvery > 0 && step % train.SaveEvery == 0 && step < _schedule.TotalSteps) SaveCheckpoint();
        }

        SaveCheckpoint();
        bool finished = _state.Step >= _schedule.TotalSteps;
        string? final = null;
        if (finished)
        {
            final = Path.Combine(_output, "final");
            using var scope = NewDisposeScope();
            SaveModel(final);
            Objective.Save(final);
        }
        var result = Result(history, stopped: !finished, final);
        Log.Information("Done: {Steps}/{Total} steps, mean loss {First:F4} over the first tenth of this session's steps → {Last:F4} over the last tenth, {Skipped} skipped, {Tokens:N0} tokens in {Seconds:F1} s. {Where}",
            _state.Step, _schedule.TotalSteps, result.FirstLoss, result.LastLoss, _state.SkippedSteps, _state.TokensSeen, _state.TrainSeconds,
            final is null ? $"Resume with --resume latest (checkpoint {_checkpoints.Latest()})." : $"Model: {final}");
        return result;
    }

    /// <summary>
    /// Warns when the share of texts whose sparse vector is all zero stays at or above
    /// <c>train.sparse_zero_warning</c> for <c>train.sparse_zero_window</c> logged steps in a row while the sparse
    /// head trains (the reference's best-known failure of unified fine-tuning). Returns the alarm text, or null.
    /// </summary>
    string? SparseZeroAlarm(IReadOnlyDictionary<string, double> values, Queue<double> recent, int step)
    {
        var train = _config.Train;
        if (!values.TryGetValue("sparse_zero_share", out double share) || !_config.Model.Heads.Contains(Losses.M3Head.Sparse)) return null;
        recent.Enqueue(share);
        while (recent.Count > train.SparseZeroWindow) recent.Dequeue();
        if (recent.Count < train.SparseZeroWindow || recent.Any(s => s < train.SparseZeroWarning))
        {
            if (share < train.SparseZeroWarning) recent.Clear();
            return null;
        }
        string alarm = $"sparse all-zero {share:P0}";
        Log.Warning("Step {Step}: {Share:P0} of texts have an all-zero sparse vector, at or above {Threshold:P0} for the last {Window} logged steps: " +
                    "the sparse head is collapsing. Consider a lower train.lr, a larger loss.sparse_loss_weight, or loss.use_self_distill.",
            step, share, train.SparseZeroWarning, train.SparseZeroWindow);
        recent.Clear();
        return alarm;
    }

    IReadOnlyDictionary<string, Tensor> RunObjective(IReadOnlyList<TrainBatch> batches, long microStep)
    {
        try
        {
            return Objective.Backward(batches, microStep, 1.0 / _config.Train.GradientAccumulationSteps);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            throw new M3TrainException(
                $"out of memory at step {_state.Step} (dataset {batches[0].DatasetName}, {batches[0].BatchSize} queries x {Math.Max(1, batches[0].GroupSize)} passages per replica): " +
                "lower data.batch_sizes (or data.tokens_per_batch), set or lower train.sub_batch_size, lower data.passage_max_len, " +
                "keep train.activation_checkpointing on, or use precision bf16 on a GPU.", e);
        }
    }

    internal static bool IsOutOfMemory(Exception e)
    {
        for (var x = e; x != null; x = x.InnerException)
            if (x is OutOfMemoryException || x.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
                || x.Message.Contains("DefaultCPUAllocator: can't allocate", StringComparison.Ordinal))
                return true;
        return false;
    }

    static long Tokens(TrainBatch b) => b.Queries.AttentionMask.Sum() + (b.Passages?.AttentionMask.Sum() ?? 0);

    TrainerResult Result(List<float> history, bool stopped, string? finalModel)
    {
        int n = Math.Max(1, history.Count / 10);
        double first = history.Count == 0 ? double.NaN : history.Take(n).Average();
        double last = history.Count == 0 ? double.NaN : history.Skip(history.Count - n).Average();
        return new(_state.Step, _schedule.TotalSteps, _state.SkippedSteps, first, last, _output, finalModel, stopped);
    }

    void SaveModel(string directory) =>
        M3CheckpointWriter.Save(Replicas.Master, directory, _layout, _loaded[0].Directory);

    void SaveCheckpoint()
    {
        // Temporaries of the save live in a scope: outside one they are left to finalizers, which can free a tensor
        // while libtorch still writes it (seen as a segfault in the save after the last step).
        using var scope = NewDisposeScope();
        if (!Replicas.WeightsIdentical())
            throw new M3TrainException($"step {_state.Step}: the replicas' weights diverged; not saving a checkpoint from an inconsistent state.");
        string path = _checkpoints.Save(_state.Step, dir =>
        {
            SaveModel(dir);
            _optimizer.save_state_dict(Path.Combine(dir, "optimizer.bin"));
            Objective.Save(dir);
            (_state with { Loader = _loaders[0].Position, WorldSize = _loaders.Count }).Save(dir);
            File.Copy(Path.Combine(_output, "config.yaml"), Path.Combine(dir, "config.yaml"), overwrite: true);
        });
        Log.Information("Checkpoint {Path}", path);
    }

    public void Dispose()
    {
        foreach (var l in _loaders) l.Dispose();
        _data.Dispose();
        _optimizer.Dispose();
        foreach (var c in _loaded) c.Dispose();
    }

    /// <summary>Loss and throughput over the steps since the last log line.</summary>
    sealed class MetricWindow
    {
        readonly Stopwatch _clock = Stopwatch.StartNew();
        double _lossSum;
        int _count;
        long _tokens;

        public void Add(double loss, long tokens)
        {
            _lossSum += loss;
            _count++;
            _tokens += tokens;
        }

        public double MeanLoss => _count == 0 ? double.NaN : _lossSum / _count;
        public double TokensPerSecond => _tokens / Math.Max(1e-9, _clock.Elapsed.TotalSeconds);
    }
}
