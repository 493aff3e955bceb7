namespace M3Train.Build;

public sealed class LifetimePatchReport
{
    public LifetimePatchResult Result { get; init; }

    /// <summary>Methods the rule marks (patched now or before).</summary>
    public int Marked { get; init; }

    /// <summary>Of those, the ones changed by this run.</summary>
    public int Changed { get; init; }

    /// <summary>Why the file was left as it was (<see cref="LifetimePatchResult.NotManaged"/>, <see cref="LifetimePatchResult.NotChecked"/>).</summary>
    public string Reason { get; init; } = "";
}
