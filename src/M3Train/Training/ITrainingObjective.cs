using M3Train.Data;

namespace M3Train.Training;

/// <summary>
/// What a recipe trains for, handed to <see cref="Trainer"/>: the unified M3 loss (<see cref="UnifiedFinetuneObjective"/>,
/// which contrastive pretraining runs with the dense head alone) or RetroMAE. The trainer owns the loop, optimizer,
/// schedule, checkpoints, metrics and faults; the objective owns its step: forward and backward of one micro-batch,
/// its loss and its own metrics and alarms. With several ranks, every rank's objective runs the same step on its own
/// slice of the global batch, and whatever it shares with the others (cross-device negatives, token counts) goes
/// through its <see cref="M3Train.DataParallel.DataParallelGroup"/>.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>Modules trained beside the model (RetroMAE's decoder); empty when there are none.</summary>
    IReadOnlyList<TrainedModule> Modules { get; }

    /// <summary>
    /// Forward and backward of this rank's slice of one micro-batch: accumulates <c>Scale · ∇loss</c> into the parameters'
    /// gradients, where the loss is this rank's share, so that the mean over ranks of the gradients is the gradient of
    /// the global batch's loss. Calls <see cref="StepContext.FinalBackward"/> before its final forward when it is set.
    /// </summary>
    ObjectiveStep Step(TrainBatch batch, StepContext context);
}
