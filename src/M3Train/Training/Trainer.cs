using System.Diagnostics;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Runtime;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The training loop shared by every recipe, over what <see cref="TrainingSetup"/> prepared and the recipe's
/// objective: AdamW with warmup/decay, gradient accumulation, clipping, checkpoints every N steps (HF folder +
/// optimizer + trainer state, atomic, last K kept), exact resume, metrics.jsonl / TensorBoard / progress,
/// non-finite losses skipped and counted, SIGINT/SIGTERM saving a checkpoint before exiting. It knows nothing of
/// what the objective computes: it logs the loss and whatever metrics the objective returns under their names.
/// <code>
/// for step: lr(step)
///   1. for each micro-batch: next batch of every replica → objective.Step (forward, backward; loss and metrics)
///   2. update: reduce gradients over replicas → clip → finite check → AdamW → broadcast weights
///   3. log (metrics.jsonl, TensorBoard, progress) → checkpoint every train.save_every steps
/// end: checkpoint + OUTPUT/final (HF/FlagEmbedding-loadable)
/// </code>
/// </summary>
public sealed class Trainer : IDisposable
{
    readonly TrainingSetup _setup;
    readonly ITrainingObjective _objective;
    readonly IReadOnlyList<IReplicaGroup<nn.Module>> _groups;
    readonly List<Parameter> _trainable;
    readonly AdamW _optimizer;
    readonly LossScaler? _scaler;
    readonly TrainingEvaluator? _evaluator;
    TrainerState _state;

    /// <summary>Builds the optimizer over the model's and the objective's trainable parameters, and restores both on resume.</summary>
    public Trainer(TrainingSetup setup, ITrainingObjective objective)
    {
        _setup = setup;
        _objective = objective;
        _state = setup.State;
        _groups = [setup.Replicas, .. objective.Modules.Select(m => m.Replicas)];
        var named = setup.Replicas.Master.named_parameters().Select(p => (p.name, p.parameter))
            .Concat(objective.Modules.SelectMany(m => m.Replicas.Master.named_parameters().Select(p => (m.ParameterPrefix + p.name, p.parameter))))
            .Where(p => p.parameter.requires_grad).ToList();
        _trainable = named.Select(p => p.parameter).ToList();
        _optimizer = OptimizerFactory.Create(named, setup.Config.Train);
        if (setup.Replicas.Master.Precision == Model.ComputePrecision.Float16)
            _scaler = new LossScaler(setup.Config.Train.LossScaleInitial, setup.Config.Train.LossScaleWindow, _state.LossScaler);
        _evaluator = TrainingEvaluator.Create(setup);
        if (setup.ResumeFrom is { } resume)
        {
            CheckpointManager.LoadOptimizer(_optimizer, resume);
            foreach (var module in objective.Modules)
            {
                module.Load(Path.Combine(resume, module.FileName));
                module.Replicas.BroadcastWeights();
            }
        }
    }

    /// <summary>Runs to the end of the schedule (or to a stop request) and saves the final model.</summary>
    public TrainerResult Run()
    {
        var train = _setup.Config.Train;
        var schedule = _setup.Schedule;
        int accumulation = train.GradientAccumulationSteps;
        using var stop = new StopSignal();
        using var metrics = new MetricsLog(_setup.Output, train.Tensorboard, _setup.ResumeFrom is null ? -1 : _state.Step);
        using var progress = new ProgressTask(_setup.Options.Recipe, schedule.TotalSteps);
        var clock = Stopwatch.StartNew();
        var history = new List<float>();
        IReadOnlyList<(string, double)> shownParts = [];
        string? alarm = null;
        int badInARow = 0;
        var window = new MetricWindow();

        while (_state.Step < schedule.TotalSteps)
        {
            if (stop.Requested)
            {
                Log.Warning("{Reason}: saving a checkpoint at step {Step} and stopping", stop.Reason, _state.Step);
                break;
            }
            if (train.StopAfter is int limit && _state.Step >= limit) break;

            int step = _state.Step + 1;
            double lr = schedule.At(_state.Step);
            OptimizerFactory.SetLr(_optimizer, lr);
            using var scope = NewDisposeScope();
            bool logStep = step % train.LogEvery == 0 || step == schedule.TotalSteps;

            // 1. Forward and backward of each micro-batch; gradients accumulate.
            Tensor? lossSum = null;
            var means = new Dictionary<string, Tensor>();
            var figures = new Dictionary<string, double>();
            long tokens = 0;
            for (int m = 0; m < accumulation; m++)
            {
                var batches = _setup.Loaders.Select(l => l.Next()).ToList();
                tokens += batches.Sum(Tokens);
                var context = new StepContext(step, _state.MicroStep, (_scaler?.Scale ?? 1.0) / accumulation, Measure: logStep && m == accumulation - 1);
                var micro = RunObjective(batches, context);
                lossSum = lossSum is null ? micro.Loss.clone() : lossSum + micro.Loss;
                foreach (var (k, v) in micro.Means)
                    means[k] = means.TryGetValue(k, out var s) ? s + v : v.clone();
                foreach (var (k, v) in micro.Figures)
                    figures[k] = figures.GetValueOrDefault(k) + v;
                alarm = micro.Alarm;
                _state = _state with { MicroStep = _state.MicroStep + 1 };
            }

            // 2. The update, skipped when the loss or the gradient is not finite.
            var update = StepUpdate.Apply(_groups, _optimizer, _trainable, train.MaxGradNorm, lossSum! / accumulation, _scaler);
            float lossValue = update.Loss, normValue = update.GradNorm;
            if (update.Overflow)
            {
                _state = _state with { LossScaler = _scaler!.State };
                Log.Information("Step {Step}: fp16 gradients overflowed; update skipped, loss scale lowered to {Scale} ({Total} such steps)", step, _scaler.Scale, _scaler.OverflowSteps);
                continue;
            }
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
                        $"{badInARow} non-finite losses in a row at step {_state.Step}: stopped. The last good weights are saved in {_setup.Checkpoints.Latest()}. " +
                        "Lower train.lr, check the data for empty or degenerate texts, or use precision fp32.");
                }
                continue;
            }
            badInARow = 0;

            _state = _state with
            {
                Step = step,
                TotalSteps = schedule.TotalSteps,
                Loader = _setup.Loaders[0].Position,
                WorldSize = _setup.Replicas.WorldSize,
                TokensSeen = _state.TokensSeen + tokens,
                TrainSeconds = _state.TrainSeconds + clock.Elapsed.TotalSeconds,
                LossScaler = _scaler?.State,
            };
            clock.Restart();
            history.Add(lossValue);
            window.Add(lossValue, tokens);

            // 3. Log and checkpoint.
            if (logStep)
            {
                var values = new Dictionary<string, double> { ["loss"] = (lossSum! / accumulation).cpu().item<float>() };
                foreach (var (k, v) in means) values[k] = (v / accumulation).cpu().item<float>();
                foreach (var (k, v) in figures) values[k] = v;
                values["lr"] = lr;
                values["grad_norm"] = normValue;
                values["tokens_per_s"] = window.TokensPerSecond;
                values["skipped_steps"] = _state.SkippedSteps;
                if (_scaler is not null)
                {
                    values["loss_scale"] = _scaler.Scale;
                    values["fp16_overflow_steps"] = _scaler.OverflowSteps;
                }
                metrics.Write(step, values);
                shownParts = [($"step {step} loss", values["loss"]), .. values.Where(kv => kv.Key.StartsWith("loss_", StringComparison.Ordinal))
                    .Select(kv => (kv.Key[5..], kv.Value))];
                Log.Information("step {Step}/{Total} loss {Loss:F4} lr {Lr:E2} grad_norm {Norm:F3} {Tps:F0} tokens/s",
                    step, schedule.TotalSteps, values["loss"], lr, normValue, window.TokensPerSecond);
            }
            progress.Update(step, [("mean loss", window.MeanLoss), ("lr", lr), ("tok/s", window.TokensPerSecond), .. shownParts], alarm);
            if (_evaluator?.Due(step, schedule.TotalSteps) == true) metrics.Write(step, _evaluator.Evaluate(step));
            if (train.SaveEvery > 0 && step % train.SaveEvery == 0 && step < schedule.TotalSteps) SaveCheckpoint();
        }

        SaveCheckpoint();
        bool finished = _state.Step >= schedule.TotalSteps;
        string? final = null;
        if (finished)
        {
            final = Path.Combine(_setup.Output, "final");
            using var scope = NewDisposeScope();
            _setup.SaveModel(final);
            foreach (var module in _objective.Modules) module.Save(Path.Combine(final, module.FileName));
        }
        var result = Result(history, stopped: !finished, final);
        Log.Information("Done: {Steps}/{Total} steps, mean loss {First:F4} over the first tenth of this session's steps → {Last:F4} over the last tenth, {Skipped} skipped, {Tokens:N0} tokens in {Seconds:F1} s. {Evaluation:l}{Where}",
            _state.Step, schedule.TotalSteps, result.FirstLoss, result.LastLoss, _state.SkippedSteps, _state.TokensSeen, _state.TrainSeconds,
            _evaluator?.Summary() is { } evaluation ? evaluation + " " : "",
            final is null ? $"Resume with --resume latest (checkpoint {_setup.Checkpoints.Latest()})." : $"Model: {final}");
        return result;
    }

    ObjectiveStep RunObjective(IReadOnlyList<TrainBatch> batches, StepContext context)
    {
        try
        {
            return _objective.Step(batches, context);
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
        return new(_state.Step, _setup.Schedule.TotalSteps, _state.SkippedSteps, first, last, _setup.Output, finalModel, stopped);
    }

    void SaveCheckpoint()
    {
        // Temporaries of the save live in a scope: outside one they are left to finalizers, which can free a tensor
        // while libtorch still writes it (seen as a segfault in the save after the last step).
        using var scope = NewDisposeScope();
        if (!_groups.All(g => g.WeightsIdentical()))
            throw new M3TrainException($"step {_state.Step}: the replicas' weights diverged; not saving a checkpoint from an inconsistent state.");
        string path = _setup.Checkpoints.Save(_state.Step, dir =>
        {
            _setup.SaveModel(dir);
            _optimizer.save_state_dict(Path.Combine(dir, "optimizer.bin"));
            foreach (var module in _objective.Modules) module.Save(Path.Combine(dir, module.FileName));
            (_state with { Loader = _setup.Loaders[0].Position, WorldSize = _setup.Replicas.WorldSize }).Save(dir);
            File.Copy(Path.Combine(_setup.Output, "config.yaml"), Path.Combine(dir, "config.yaml"), overwrite: true);
        });
        Log.Information("Checkpoint {Path}", path);
    }

    public void Dispose() => _optimizer.Dispose();

    /// <summary>Loss and throughput over this invocation's steps (the progress line's mean loss).</summary>
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
