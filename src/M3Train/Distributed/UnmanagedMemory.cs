using System.Buffers;

namespace M3Train.Distributed;

/// <summary>
/// A <see cref="Memory{T}"/> over native memory (a tensor's storage), so sockets can send from and receive into
/// tensors without a managed copy. The owner keeps the memory alive for as long as the view is used.
/// </summary>
public sealed unsafe class UnmanagedMemory(nint address, int length) : MemoryManager<byte>
{
    public override Span<byte> GetSpan() => new((void*)address, length);

    public override MemoryHandle Pin(int elementIndex = 0) => new((byte*)address + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }

    public static void Copy(nint from, nint to, long bytes) => Buffer.MemoryCopy((void*)from, (void*)to, bytes, bytes);

    public static Memory<byte> At(nint address, long length) => length == 0 ? Memory<byte>.Empty : new UnmanagedMemory(address, checked((int)length)).Memory;
}
