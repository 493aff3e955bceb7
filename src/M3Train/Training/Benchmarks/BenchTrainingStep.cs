using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Training.Losses;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// The trainer's step on a benchmark model: <see cref="UnifiedFinetuneObjective"/> (forward and backward, GradCache with
/// sub-batches) and <see cref="StepUpdate"/> (gradients averaged over the ranks, fp16's loss scaler, clipping, the finite
/// check, AdamW), as <see cref="Trainer"/> runs them for one micro-batch per step, with the fine-tuning recipe's loss and
/// optimizer defaults.
/// </summary>
public sealed class BenchTrainingStep : IDisposable
{
    readonly DataParallelGroup _group;
    readonly UnifiedFinetuneObjective _objective;
    readonly GradientBuckets _gradients;
    readonly AdamW _optimizer;
    readonly List<Parameter> _trainable;
    readonly TrainConfig _train;
    readonly LossScaler? _scaler;
    long _microStep;

    /// <param name="model">On the group's device, in training mode.</param>
    /// <param name="group">This rank (a world of one, or one of <c>bench --nproc</c>'s ranks).</param>
    /// <param name="s">The benchmark's settings.</param>
    public BenchTrainingStep(M3Model model, DataParallelGroup group, BenchSettings s)
    {
        _train = new TrainConfig { SubBatchSize = s.SubBatch, ActivationCheckpointing = s.Checkpointing, Seed = s.Seed };
        _group = group;
        _objective = new UnifiedFinetuneObjective(model, group, new M3BatchLoss(new LossConfig(), Enum.GetValues<M3Head>()), s.SubBatch, s.Seed);
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        _trainable = named.Select(p => p.parameter).ToList();
        _optimizer = OptimizerFactory.Create(named, _train);
        _gradients = GradientBuckets.Observing(group, _trainable, model.Backbone, s.Overlap);
        if (model.Precision == ComputePrecision.Float16) _scaler = new LossScaler(_train.LossScaleInitial, _train.LossScaleWindow);
    }

    /// <summary>Seconds the last step's gradient averaging blocked the host (0 in a world of one).</summary>
    public double LastReduceSeconds => _gradients.LastReduceSeconds;

    /// <summary>Gradient buckets, and how many of them the last step started during backward.</summary>
    public (int Buckets, int Overlapped) LastBuckets => (_gradients.BucketCount, _gradients.LastOverlappedBuckets);

    /// <summary>One step on <paramref name="batch"/>; <paramref name="phaseEnd"/> (the split pass only) is called at each phase's end.</summary>
    public StepUpdateResult Run(TrainBatch batch, Action<StepPhase>? phaseEnd = null)
    {
        using var scope = NewDisposeScope();
        OptimizerFactory.SetLr(_optimizer, _train.Lr);
        _objective.PhaseEnd = phaseEnd;
        var step = _objective.Step(batch, new StepContext((int)_microStep + 1, _microStep++, _scaler?.Scale ?? 1.0, FinalBackward: _gradients.FinalBackwardNext));
        var result = StepUpdate.Apply(_gradients, _optimizer, _trainable, _train.MaxGradNorm, _group.Mean(step.Loss), _scaler);
        phaseEnd?.Invoke(StepPhase.Optimizer);
        return result;
    }

    public void Dispose()
    {
        _gradients.Dispose();
        _optimizer.Dispose();
    }
}
