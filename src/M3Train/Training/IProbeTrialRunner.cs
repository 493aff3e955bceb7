namespace M3Train.Training;

/// <summary>
/// Runs one trial of a CUDA probe in a fresh process and returns its result (a trial cannot run in the probing process:
/// an out-of-memory error inside a checkpointed layer's recomputation ends the process). The host program provides it;
/// m3train starts itself with <c>probe-batch --trial</c>, whose child side is <see cref="BatchSizeProbe.RunTrial"/>.
/// </summary>
public interface IProbeTrialRunner
{
    /// <param name="config">The run config the child loads; its <c>train.device</c> is the probed device.</param>
    /// <param name="trial">The sizes to try.</param>
    ProbeTrialResult Run(RunConfig config, ProbeTrial trial);
}
