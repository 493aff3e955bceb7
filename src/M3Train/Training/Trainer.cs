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
///   1. for each micro-batch: this rank's slice of the next global batch → objective.Step (forward, backward)
///   2. agree over ranks: loss, tokens, stop request → update: gradients averaged over ranks (buckets) → unscaled
///      (fp16) → clip → finite check → AdamW (every rank the same update on the same gradients)
///   3. log (rank 0: metrics.jsonl, TensorBoard, progress) → evaluate (train.eval, rank 0) → checkpoint every
///      train.save_every steps
/// end: checkpoint + OUTPUT/final (HF/FlagEmbedding-loadable)
/// </code>
/// </summary>
/// <remarks>
/// Data parallelism: every rank runs this loop on its own device and slice, in step. Each rank keeps its own AdamW and
/// applies it to gradients averaged over all ranks, so weights stay bit-identical without being sent around; a
/// checksum over all ranks checks it before every checkpoint. Only rank 0 writes the run folder and evaluates; the others
/// wait at a barrier while it saves or evaluates. Decisions that end or skip a step (a non-finite loss, an fp16 overflow,
/// a stop signal) are taken on values every rank shares, so ranks never part ways.
/// </remarks>
public sealed class Trainer : IDisposable
{
    /// <summary>How long the other ranks wait while rank 0 writes a checkpoint or the final model.</summary>
    static readonly TimeSpan SaveWait = TimeSpan.FromMinutes(30);

    readonly TrainingSetup _setup;
    readonly ITrainingObjective _objective;
    readonly DataParallelGroup _group;
    readonly List<Parameter> _trainable;
    readonly List<Parameter> _weights;
    readonly AdamW _optimizer;
    readonly GradientBuckets _gradients;
    readonly LossScaler? _scaler;
    readonly TrainingEvaluator? _evaluator;
    TrainerState _state;

    /// <summary>Builds the optimizer over the model's and the objective's trainable parameters, and restores both on resume.</summary>
    public Trainer(TrainingSetup setup, ITrainingObjective objective)
    {
        _setup = setup;
        _objective = objective;
        _group = setup.Group;
        _state = setup.State;
        var named = setup.Model.named_parameters().Select(p => (p.name, p.parameter))
            .Concat(objective.Modules.SelectMany(m => m.Module.named_parameters().Select(p => (m.ParameterPrefix + p.name, p.parameter))))
            .ToList();
        _weights = named.Select(p => p.parameter).ToList();
        var trainable = named.Where(p => p.parameter.requires_grad).ToList();
        _trainable = trainable.Select(p => p.parameter).ToList();
        _optimizer = OptimizerFactory.Create(trainable, setup.Config.Train);
        _gradients = GradientBuckets.Observing(_group, _trainable, setup.Model.Backbone);
        if (setup.Model.Precision == Model.ComputePrecision.Float16)
            _scaler = new LossScaler(setup.Config.Train.LossScaleInitial, setup.Config.Train.LossScaleWindow, _state.LossScaler);
        // Evaluation and the best model are rank 0's: the other ranks wait for it at a barrier (WaitForRankZero).
        _evaluator = _group.IsMain ? TrainingEvaluator.Create(setup) : null;
        if (setup.ResumeFrom is { } resume)
        {
            CheckpointManager.LoadOptimizer(_optimizer, resume);
            foreach (var module in objective.Modules) module.Load(Path.Combine(resume, module.FileName));
        }
        // Every rank loaded its own copy of the same files: a rank that read something else fails now, not at the first checkpoint.
        _group.VerifyIdentical(_weights);
    }

    /// <summary>Runs to the end of the schedule (or to a stop request) and saves the final model.</summary>
    public TrainerResult Run()
    {
        var train = _setup.Config.Train;
        var schedule = _setup.Schedule;
        int accumulation = train.GradientAccumulationSteps;
        using var stop = new StopSignal();
        using var metrics = _group.IsMain ? new MetricsLog(_setup.Output, train.Tensorboard, _setup.ResumeFrom is null ? -1 : _state.Step) : null;
        using var progress = _group.IsMain ? new ProgressTask(_setup.Options.Recipe, schedule.TotalSteps) : null;
        var clock = Stopwatch.StartNew();
        int startStep = _state.Step;
        var history = new List<float>();
        IReadOnlyList<(string, double)> shownParts = [];
        string? alarm = null;
        int badInARow = 0;
        bool stopAgreed = false;
        var window = new MetricWindow();

        while (_state.Step < schedule.TotalSteps)
        {
            if (stopAgreed)
            {
                Log.Warning("{Reason}: saving a checkpoint at step {Step} and stopping", stop.Reason ?? "a stop signal on another rank", _state.Step);
                break;
            }
            // train.stop_after counts this invocation's steps: a run trained in time slices resumes with the same setting.
            if (train.StopAfter is int limit && _state.Step - startStep >= limit) break;

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
                var batch = _setup.Loader.Next();
                tokens += Tokens(batch);
                bool last = m == accumulation - 1;
                var context = new StepContext(step, _state.MicroStep, (_scaler?.Scale ?? 1.0) / accumulation, Measure: logStep && last,
                    FinalBackward: last ? _gradients.FinalBackwardNext : null);
                var micro = RunObjective(batch, context);
                lossSum = lossSum is null ? micro.Loss.clone() : lossSum + micro.Loss;
                foreach (var (k, v) in micro.Means)
                    means[k] = means.TryGetValue(k, out var s) ? s + v : v.clone();
                foreach (var (k, v) in micro.Figures)
                    figures[k] = figures.GetValueOrDefault(k) + v;
                alarm = micro.Alarm;
                _state = _state with { MicroStep = _state.MicroStep + 1 };
            }

            // 2. The update on gradients averaged over the ranks, skipped everywhere when the loss or the gradient is not finite.
            var agreed = Agree(lossSum! / accumulation, tokens, stop.Requested);
            tokens = agreed.Tokens;
            stopAgreed = agreed.Stop;
            var update = StepUpdate.Apply(_gradients, _optimizer, _trainable, train.MaxGradNorm, agreed.Loss, _scaler);
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
                var values = AgreeMetrics(means, figures, accumulation);
                values["loss"] = lossValue;
                values["lr"] = lr;
                values["grad_norm"] = normValue;
                values["tokens_per_s"] = window.TokensPerSecond;
                values["skipped_steps"] = _state.SkippedSteps;
                if (_scaler is not null)
                {
                    values["loss_scale"] = _scaler.Scale;
                    values["fp16_overflow_steps"] = _scaler.OverflowSteps;
                }
                metrics?.Write(step, values);
                shownParts = [($"step {step} loss", values["loss"]), .. values.Where(kv => kv.Key.StartsWith("loss_", StringComparison.Ordinal))
                    .Select(kv => (kv.Key[5..], kv.Value))];
                if (_group.IsMain)
                    Log.Information("step {Step}/{Total} loss {Loss:F4} lr {Lr:E2} grad_norm {Norm:F3} {Tps:F0} tokens/s",
                        step, schedule.TotalSteps, values["loss"], lr, normValue, window.TokensPerSecond);
            }
            progress?.Update(step, [("mean loss", window.MeanLoss), ("lr", lr), ("tok/s", window.TokensPerSecond), .. shownParts], alarm);
            if (TrainingEvaluator.Due(train.Eval, step, schedule.TotalSteps))
            {
                if (_evaluator is not null) metrics?.Write(step, _evaluator.Evaluate(step));
                WaitForRankZero("evaluation");
            }
            if (train.SaveEvery > 0 && step % train.SaveEvery == 0 && step < schedule.TotalSteps) SaveCheckpoint();
        }

        // A resumed run that trained nothing leaves its checkpoint as it found it.
        if (_state.Step > startStep || _setup.ResumeFrom is null) SaveCheckpoint();
        bool finished = _state.Step >= schedule.TotalSteps;
        string? final = null;
        if (finished)
        {
            final = Path.Combine(_setup.Output, "final");
            if (_group.IsMain)
            {
                using var scope = NewDisposeScope();
                _setup.SaveModel(final);
                foreach (var module in _objective.Modules) module.Save(Path.Combine(final, module.FileName));
            }
            WaitForRankZero("final");
        }
        var result = Result(history, stopped: !finished, final) with { SessionSteps = _state.Step - startStep };
        string where = final is null ? $"Resume with --resume latest (checkpoint {_setup.Checkpoints.Latest()})." : $"Model: {final}";
        if (_group.IsMain && history.Count == 0)
            Log.Information("Done: {Steps}/{Total} steps, none trained in this session. {Where}", _state.Step, schedule.TotalSteps, where);
        else if (_group.IsMain)
            Log.Information("Done: {Steps}/{Total} steps, mean loss {First:F4} over the first tenth of this session's steps → {Last:F4} over the last tenth, {Skipped} skipped, {Tokens:N0} tokens in {Seconds:F1} s. {Evaluation:l}{Where}",
                _state.Step, schedule.TotalSteps, result.FirstLoss, result.LastLoss, _state.SkippedSteps, _state.TokensSeen, _state.TrainSeconds,
                _evaluator?.Summary() is { } evaluation ? evaluation + " " : "", where);
        return result;
    }

    /// <summary>
    /// What every rank must agree on after a step's backward: the step's loss over all ranks (so the finite check skips
    /// a step on every rank or none), the tokens of the global batch, and whether any rank was asked to stop. One small
    /// all-reduce; a world of one keeps its own values.
    /// </summary>
    (Tensor Loss, long Tokens, bool Stop) Agree(Tensor loss, long tokens, bool stop)
    {
        if (_group.WorldSize == 1) return (loss, tokens, stop);
        var local = cat([loss.to(float64).reshape(1), tensor(new[] { tokens, stop ? 1.0 : 0.0 }, float64, _group.Device)]);
        var total = _group.Sum(local);
        var host = total.cpu().data<double>().ToArray();
        return (total[0] / _group.WorldSize, (long)host[1], host[2] > 0);
    }

    /// <summary>The step's metric means and figures, averaged over the micro-batches and the ranks (read back once, on logged steps).</summary>
    Dictionary<string, double> AgreeMetrics(Dictionary<string, Tensor> means, Dictionary<string, double> figures, int accumulation)
    {
        // The objective adds its metrics in the same order on every rank: packed in that order, they line up.
        var names = means.Keys.ToList();
        var figureNames = figures.Keys.ToList();
        var values = new Dictionary<string, double>();
        if (names.Count + figureNames.Count == 0) return values;
        var local = cat([
            .. names.Select(k => (means[k] / accumulation).to(float64).reshape(1)),
            tensor(figureNames.Select(k => figures[k]).ToArray(), float64, _group.Device),
        ]);
        var host = _group.Mean(local).cpu().data<double>().ToArray();
        int i = 0;
        foreach (var k in names.Concat(figureNames)) values[k] = host[i++];
        return values;
    }

    ObjectiveStep RunObjective(TrainBatch batch, StepContext context)
    {
        try
        {
            return _objective.Step(batch, context);
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            throw new M3TrainException(
                $"out of memory at step {_state.Step} (dataset {batch.DatasetName}, {batch.BatchSize} queries x {Math.Max(1, batch.GroupSize)} passages per rank): " +
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
        long? digest = _group.VerifyIdentical(_weights);
        if (_group.IsMain)
        {
            if (digest is long d) Log.Information("Weights identical on all {World} ranks (digest {Digest:x16})", _group.WorldSize, d);
            string path = _setup.Checkpoints.Save(_state.Step, dir =>
            {
                _setup.SaveModel(dir);
                _optimizer.save_state_dict(Path.Combine(dir, "optimizer.bin"));
                foreach (var module in _objective.Modules) module.Save(Path.Combine(dir, module.FileName));
                (_state with { Loader = _setup.Loader.Position, WorldSize = _group.WorldSize }).Save(dir);
                File.Copy(Path.Combine(_setup.Output, "config.yaml"), Path.Combine(dir, "config.yaml"), overwrite: true);
            });
            Log.Information("Checkpoint {Path}", path);
        }
        WaitForRankZero("checkpoint");
    }

    /// <summary>
    /// The other ranks wait while rank 0 writes (up to <see cref="SaveWait"/>; a rank 0 that stops answering is still
    /// noticed within the timeout); rank 0 arrives last and waits only the usual timeout for ranks that stalled.
    /// </summary>
    void WaitForRankZero(string name) => _setup.Distributed.Store?.Barrier(name, _group.IsMain ? null : SaveWait);

    public void Dispose()
    {
        _gradients.Dispose();
        _optimizer.Dispose();
    }

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
