namespace M3Train.Training;

/// <summary>
/// Learning rate at each optimizer step: warmup (linear or log) to the peak, then linear decay to 0 at the
/// last step. A pure function of the step, so a resumed run rebuilds it from the step alone.
/// </summary>
public sealed class LrSchedule(double peak, int totalSteps, int warmupSteps, WarmupShape shape = WarmupShape.Linear)
{
    public double Peak { get; } = peak;
    public int TotalSteps { get; } = totalSteps;
    public int WarmupSteps { get; } = warmupSteps;

    public static LrSchedule FromConfig(TrainConfig c, int totalSteps) =>
        new(c.Lr, totalSteps, (int)Math.Ceiling(c.WarmupRatio * totalSteps), c.Warmup);

    /// <summary>lr for optimizer step <paramref name="step"/> (0-based: the first update uses step 0).</summary>
    public double At(int step)
    {
        if (step < WarmupSteps)
        {
            return shape == WarmupShape.Linear
                ? Peak * (step + 1) / WarmupSteps
                : Peak * Math.Log(step + 2) / Math.Log(WarmupSteps + 1);
        }
        int decaySteps = Math.Max(1, TotalSteps - WarmupSteps);
        return Peak * Math.Max(0.0, (double)(TotalSteps - step) / decaySteps);
    }
}
