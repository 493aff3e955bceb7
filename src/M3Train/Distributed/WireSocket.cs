using System.Buffers.Binary;
using System.Net.Sockets;

namespace M3Train.Distributed;

/// <summary>
/// A connected TCP socket with the framing every link of the runtime uses: a frame is a little-endian u32 length
/// and that many bytes, and a frame longer than the link's limit is a protocol violation (the sender is dropped
/// before anything is allocated for it). Reads end at the token's cancellation, which is how deadlines and aborts
/// reach a blocked read.
/// </summary>
public sealed class WireSocket : IDisposable
{
    readonly Socket _socket;

    public WireSocket(Socket socket)
    {
        _socket = socket;
        Configure(socket);
    }

    public Socket Socket => _socket;

    public string Remote => _socket.RemoteEndPoint?.ToString() ?? "?";

    /// <summary>
    /// No Nagle delay (the store's messages are small and latency-bound) and TCP keepalive probes, so a peer whose
    /// machine vanished without closing its connection is noticed within about 25 seconds (10 s idle, 3 probes 5 s apart).
    /// </summary>
    public static void Configure(Socket socket)
    {
        socket.NoDelay = true;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 10);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 5);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
    }

    public async Task ReadExactlyAsync(Memory<byte> buffer, CancellationToken cancel)
    {
        while (buffer.Length > 0)
        {
            int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cancel).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException("the connection was closed by the other side");
            buffer = buffer[n..];
        }
    }

    public async Task WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancel)
    {
        while (buffer.Length > 0)
        {
            int n = await _socket.SendAsync(buffer, SocketFlags.None, cancel).ConfigureAwait(false);
            buffer = buffer[n..];
        }
    }

    public async Task<byte[]> ReadFrameAsync(int maxBytes, CancellationToken cancel)
    {
        var header = new byte[4];
        await ReadExactlyAsync(header, cancel).ConfigureAwait(false);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (length > maxBytes) throw new InvalidDataException($"a frame of {length} bytes exceeds this link's limit of {maxBytes}");
        var payload = new byte[length];
        await ReadExactlyAsync(payload, cancel).ConfigureAwait(false);
        return payload;
    }

    public async Task WriteFrameAsync(ReadOnlyMemory<byte> payload, CancellationToken cancel)
    {
        var frame = new byte[4 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)payload.Length);
        payload.CopyTo(frame.AsMemory(4));
        await WriteAsync(frame, cancel).ConfigureAwait(false);
    }

    public void Dispose()
    {
        try { _socket.Shutdown(SocketShutdown.Both); }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        _socket.Dispose();
    }
}
