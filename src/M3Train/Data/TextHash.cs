using System.Runtime.InteropServices;

namespace M3Train.Data;

/// <summary>
/// A 64-bit FNV-1a hash of a text's UTF-16 code units: equal texts get equal hashes, and at 64 bits two
/// different passages in one batch collide with negligible probability. Used to find duplicated passages
/// (the losses' false-negative mask) without keeping texts next to the batch tensors.
/// </summary>
public static class TextHash
{
    private const ulong OffsetBasis = 14695981039346656037UL;
    private const ulong Prime = 1099511628211UL;

    public static ulong Of(string text)
    {
        ulong hash = OffsetBasis;
        foreach (byte b in MemoryMarshal.AsBytes(text.AsSpan()))
        {
            hash ^= b;
            hash *= Prime;
        }
        return hash;
    }
}
