namespace M3Train.Training;

/// <summary>Where a <see cref="LossScaler"/> stands, saved in <c>trainer_state.json</c> so a resumed fp16 run scales as the uninterrupted one would.</summary>
/// <param name="Scale">What the loss is multiplied by before backward.</param>
/// <param name="StepsSinceOverflow">Steps with finite gradients since the scale last changed.</param>
/// <param name="OverflowSteps">Steps skipped because their gradients overflowed, in the whole run.</param>
public sealed record LossScalerState(double Scale, int StepsSinceOverflow, long OverflowSteps);
