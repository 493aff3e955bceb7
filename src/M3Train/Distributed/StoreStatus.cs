namespace M3Train.Distributed;

/// <summary>The first byte of a store reply (see <see cref="StoreMessage"/>).</summary>
public enum StoreStatus : byte
{
    Ok = 0,
    Value = 1,
    Absent = 2,
    Timeout = 3,
    /// <summary>A rank failed; the reply's text says which and why.</summary>
    Failed = 4,
    Counter = 5,
    /// <summary>The request broke a limit (the store's total size); the text says which.</summary>
    Refused = 6,
}
