namespace M3Train.Distributed;

/// <summary>What a connection is for, declared (and authenticated) in its <see cref="Handshake"/>.</summary>
public enum PeerRole : byte
{
    /// <summary>A rank's request/response connection to the rendezvous store.</summary>
    Store = 1,
    /// <summary>A rank's second rendezvous connection, parked until some rank fails.</summary>
    Watch = 2,
    /// <summary>A rank's data link to its successor in the CPU ring.</summary>
    Ring = 3,
}
