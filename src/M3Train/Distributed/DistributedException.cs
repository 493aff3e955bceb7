namespace M3Train.Distributed;

/// <summary>
/// A rank of a multi-process run failed, stalled or could not join: the message names the rank and its error,
/// so the CLI prints it alone and every rank ends with the same explanation.
/// </summary>
public sealed class DistributedException : M3TrainException
{
    public DistributedException(string message) : base(message) { }
    public DistributedException(string message, Exception inner) : base(message, inner) { }
}
