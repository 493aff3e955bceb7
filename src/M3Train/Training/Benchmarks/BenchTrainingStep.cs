using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Training.Losses;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// The trainer's step on a benchmark model: <see cref="UnifiedFinetuneObjective"/> (forward and backward, GradCache with
/// sub-batches) and <see cref="StepUpdate"/> (clipping, the finite check, AdamW), as <see cref="Trainer"/> runs
/// them for one micro-batch per step, with the fine-tuning recipe's loss and optimizer defaults (and, in fp16, its loss
/// scaler).
/// </summary>
public sealed class BenchTrainingStep : IDisposable
{
    readonly ReplicaSet<M3Model> _replicas;
    readonly UnifiedFinetuneObjective _objective;
    readonly AdamW _optimizer;
    readonly List<Parameter> _trainable;
    readonly TrainConfig _train;
    readonly LossScaler? _scaler;
    long _microStep;

    /// <param name="model">On <paramref name="device"/>, in training mode.</param>
    public BenchTrainingStep(M3Model model, Device device, BenchSettings s)
    {
        _train = new TrainConfig { SubBatchSize = s.SubBatch, ActivationCheckpointing = s.Checkpointing, Seed = s.Seed };
        _replicas = new ReplicaSet<M3Model>([model], [device]);
        _objective = new UnifiedFinetuneObjective(_replicas, new M3BatchLoss(new LossConfig(), Enum.GetValues<M3Head>()), s.SubBatch, s.Seed);
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        _trainable = named.Select(p => p.parameter).ToList();
        _optimizer = OptimizerFactory.Create(named, _train);
        if (model.Precision == ComputePrecision.Float16) _scaler = new LossScaler(_train.LossScaleInitial, _train.LossScaleWindow);
    }

    /// <summary>One step on <paramref name="batch"/>; <paramref name="phaseEnd"/> (the split pass only) is called at each phase's end.</summary>
    public StepUpdateResult Run(TrainBatch batch, Action<StepPhase>? phaseEnd = null)
    {
        using var scope = NewDisposeScope();
        OptimizerFactory.SetLr(_optimizer, _train.Lr);
        _objective.PhaseEnd = phaseEnd;
        var step = _objective.Step([batch], new StepContext((int)_microStep + 1, _microStep++, _scaler?.Scale ?? 1.0));
        var result = StepUpdate.Apply([_replicas], _optimizer, _trainable, _train.MaxGradNorm, step.Loss, _scaler);
        phaseEnd?.Invoke(StepPhase.Optimizer);
        return result;
    }

    public void Dispose() => _optimizer.Dispose();
}
