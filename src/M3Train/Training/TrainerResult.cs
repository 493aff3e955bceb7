namespace M3Train.Training;

/// <summary>What a finished (or stopped) run reports; the losses are means over the first and last tenth of the steps this invocation ran.</summary>
public sealed record TrainerResult(int Steps, int TotalSteps, long SkippedSteps, double FirstLoss, double LastLoss,
    string OutputDirectory, string? FinalModel, bool Stopped)
{
    /// <summary>Optimizer steps this invocation ran (<see cref="Steps"/> counts the whole run's).</summary>
    public int SessionSteps { get; init; }
}
