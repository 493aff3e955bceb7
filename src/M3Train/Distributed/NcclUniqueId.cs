using System.Runtime.InteropServices;

namespace M3Train.Distributed;

/// <summary>
/// NCCL's <c>ncclUniqueId</c>: 128 opaque bytes (<c>NCCL_UNIQUE_ID_BYTES</c>) that rank 0 makes and every rank
/// passes by value to <c>ncclCommInitRank</c>; it travels through the rendezvous.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
public unsafe struct NcclUniqueId
{
    public const int Bytes = 128;

    fixed byte _internal[Bytes];

    public readonly byte[] ToArray()
    {
        var bytes = new byte[Bytes];
        for (int i = 0; i < Bytes; i++) bytes[i] = _internal[i];
        return bytes;
    }

    public static NcclUniqueId FromArray(byte[] bytes)
    {
        if (bytes.Length != Bytes) throw new DistributedException($"an NCCL unique id has {Bytes} bytes; the rendezvous held {bytes.Length}.");
        var id = new NcclUniqueId();
        for (int i = 0; i < Bytes; i++) id._internal[i] = bytes[i];
        return id;
    }
}
