namespace M3Train.Training.Benchmarks;

/// <summary>
/// Time per <see cref="StepPhase"/> over several steps, for the split-measurement pass only: it synchronizes the
/// device at every phase boundary, which the headline timing must not do.
/// </summary>
public sealed class PhaseTimer(DeviceClock clock)
{
    readonly double[] _seconds = new double[Enum.GetValues<StepPhase>().Length];
    double _mark;

    public int Steps { get; private set; }

    /// <summary>Starts a step: waits for the device, then marks the time.</summary>
    public void BeginStep()
    {
        _mark = clock.SynchronizedNow();
        Steps++;
    }

    /// <summary>The phase callback for <see cref="BenchTrainingStep.Run"/>.</summary>
    public void End(StepPhase phase)
    {
        double now = clock.SynchronizedNow();
        _seconds[(int)phase] += now - _mark;
        _mark = now;
    }

    /// <summary>Mean seconds per step spent in <paramref name="phase"/>.</summary>
    public double MeanSeconds(StepPhase phase) => Steps == 0 ? 0 : _seconds[(int)phase] / Steps;
}
