using M3Train.Data;

namespace M3Train.Training;

/// <summary>
/// What a recipe trains for, handed to <see cref="Trainer"/>: the unified M3 loss (<see cref="UnifiedFinetuneObjective"/>,
/// which contrastive pretraining runs with the dense head alone) or RetroMAE. The trainer owns the loop, optimizer,
/// schedule, checkpoints, metrics and faults; the objective owns its step: forward and backward of one micro-batch,
/// its loss and its own metrics and alarms.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>Modules trained beside the model (RetroMAE's decoder); empty when there are none.</summary>
    IReadOnlyList<TrainedModule> Modules { get; }

    /// <summary>Forward and backward of one micro-batch, one batch per replica: accumulates <c>Scale · ∇loss</c> into the replicas' gradients.</summary>
    ObjectiveStep Step(IReadOnlyList<TrainBatch> batches, StepContext context);
}
