namespace M3Train.Training;

/// <summary>How <see cref="BatchSizeProbe"/> runs (the options of <c>m3train probe-batch</c>).</summary>
public sealed record BatchProbeOptions
{
    /// <summary>Where the probed config is written. Required.</summary>
    public required string OutputPath { get; init; }

    /// <summary>
    /// Share of the memory a step may take. On CUDA: of the device's total memory (what the driver reports in use,
    /// the CUDA context and other processes included). On CPU: of the host memory available when the probe starts, on
    /// top of what the process already holds. Default 0.9.
    /// </summary>
    public double MemoryFraction { get; init; } = 0.9;

    /// <summary>Device to probe on; null: the run's (the first of <c>train.devices</c>, else <c>train.device</c>).</summary>
    public string? Device { get; init; }

    /// <summary>The largest batch (or sub-batch) considered; null: 1024 on CPU, 4096 on CUDA.</summary>
    public int? MaxBatch { get; init; }

    /// <summary>On CPU, a predicted size is run to check it when its predicted step time is at most this. Default 30 s.</summary>
    public double VerifyWithinSeconds { get; init; } = 30;

    /// <summary>Runs each CUDA trial in a child process (see <see cref="IProbeTrialRunner"/>). Required on CUDA.</summary>
    public IProbeTrialRunner? TrialRunner { get; init; }
}
