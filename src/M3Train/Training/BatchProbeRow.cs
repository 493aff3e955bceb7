namespace M3Train.Training;

/// <summary>How a <see cref="BatchProbeRow"/>'s size was established.</summary>
public enum ProbeEvidence
{
    /// <summary>A step of this size ran and stayed within the limit (on CUDA: and the next size up did not).</summary>
    Measured,
    /// <summary>On CPU: predicted from smaller steps, then run and found within the limit.</summary>
    Verified,
    /// <summary>No row of the data falls in the bin: not probed; the previous bin's size, which its batches never use.</summary>
    NoRows,
    /// <summary>Taken over from an earlier bin with the same lengths.</summary>
    SameLengths,
}

/// <summary>
/// One length bin's result: the per-replica batch (queries), the sub-batch size when sub-batches were probed, and the
/// step's measured peak memory and time (null for <see cref="ProbeEvidence.NoRows"/>).
/// </summary>
public sealed record BatchProbeRow(ProbeBin Bin, int Batch, int? SubBatch, long? PeakBytes, double? StepSeconds, ProbeEvidence Evidence);
