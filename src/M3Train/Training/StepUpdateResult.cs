namespace M3Train.Training;

/// <summary>What <see cref="StepUpdate.Apply"/> read back and did.</summary>
/// <param name="Loss">The step's loss.</param>
/// <param name="GradNorm">The global gradient norm before clipping.</param>
/// <param name="Applied">False when the loss or the norm was not finite: gradients were cleared and the weights left as they were.</param>
/// <param name="Overflow">Not applied because fp16 gradients overflowed under the loss scale, which was halved: an expected skip, not a bad step.</param>
public sealed record StepUpdateResult(float Loss, float GradNorm, bool Applied, bool Overflow = false);
