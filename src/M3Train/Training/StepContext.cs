namespace M3Train.Training;

/// <summary>Where a micro-batch sits in the run: what an objective's step needs besides the batch.</summary>
/// <param name="Step">The optimizer step it belongs to (1-based), for messages.</param>
/// <param name="MicroStep">Micro-batches before it in the run (0-based): self-distillation's start and dropout seeds derive from it, so a resumed run replays them.</param>
/// <param name="Scale">Gradients accumulate as Scale · ∇loss: 1 / the micro-batches of a step, times fp16's loss scale (<see cref="LossScaler"/>).</param>
/// <param name="Measure">Also measure the health of what it encodes (the last micro-batch of a logged step).</param>
/// <param name="FinalBackward">
/// Set on a step's last micro-batch: the objective calls it just before the forward whose backward completes the step's
/// gradients (its last GradCache piece, or its only pass), once every earlier backward has returned, so the gradient
/// buckets of data parallelism start averaging layers while the rest of that backward runs. Null otherwise.
/// </param>
public sealed record StepContext(int Step, long MicroStep, double Scale = 1.0, bool Measure = false, Action? FinalBackward = null);
