namespace M3Train.Distributed;

/// <summary>The store's operations (the first byte of a request, see <see cref="StoreMessage"/>).</summary>
public enum StoreOp : byte
{
    Set = 1,
    Get = 2,
    /// <summary>Blocks until the key is set, the timeout passes or a rank fails.</summary>
    Wait = 3,
    /// <summary>Adds to a 64-bit counter and returns its new value.</summary>
    Add = 4,
    /// <summary>This rank failed (sent on the watch connection, so a long wait on the store connection cannot delay it).</summary>
    Fail = 5,
    /// <summary>This rank is done: its connection closing is no longer a failure.</summary>
    Leave = 6,
}
