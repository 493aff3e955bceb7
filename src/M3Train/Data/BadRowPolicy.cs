namespace M3Train.Data;

/// <summary>What happens to a training row that cannot be used (<c>data.on_bad_row</c>).</summary>
public enum BadRowPolicy
{
    /// <summary>Fail before training starts, naming file:line and the reason (the default).</summary>
    Error,
    /// <summary>Leave the row out, logging its location and reason, and a count per file.</summary>
    Skip,
}
