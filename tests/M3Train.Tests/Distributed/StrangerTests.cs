using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using M3Train.Distributed;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Distributed;

/// <summary>The rendezvous port is open to the network: whatever connects to it must not disturb the job.</summary>
public class StrangerTests
{
    static Socket Connect(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 8000 };
        socket.Connect(IPAddress.Loopback, port);
        return socket;
    }

    /// <summary>Whether the server closed the connection (reads until end of stream; false if it stays open 8 s).</summary>
    internal static bool ClosedByServer(Socket socket)
    {
        var buffer = new byte[4096];
        try
        {
            while (socket.Receive(buffer) > 0) { }
            return true;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode != SocketError.TimedOut;
        }
    }

    /// <summary>A well-formed greeting that claims rank 0 with a MAC made without the token.</summary>
    static byte[] ForgedHello()
    {
        var hello = new byte[Handshake.ClientHelloBytes];
        "M3RV"u8.CopyTo(hello);
        hello[4] = 1;
        hello[5] = (byte)PeerRole.Store;
        Random.Shared.NextBytes(hello.AsSpan(10));
        return hello;
    }

    /// <summary>Connects to the rendezvous at <paramref name="port"/> once it listens, as every kind of stranger; the sockets and refusals are kept.</summary>
    internal static void Attack(int port, List<Socket> strangers, List<string> refusals)
    {
        // Wait for rank 0's rendezvous to listen.
        var until = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                Connect(port).Dispose();
                break;
            }
            catch (SocketException) when (DateTime.UtcNow < until)
            {
                Thread.Sleep(20);
            }
        }
        strangers.Add(Connect(port));                                                       // silent: never says a word
        var garbage = Connect(port);
        garbage.Send(Enumerable.Range(0, 65536).Select(i => (byte)(i * 31)).ToArray());     // garbage
        strangers.Add(garbage);
        var huge = Connect(port);
        var length = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(length, uint.MaxValue);
        huge.Send(length);                                                                  // a frame header claiming 4 GiB
        strangers.Add(huge);
        var forged = Connect(port);
        forged.Send(ForgedHello());                                                         // no token: the MAC is made up
        strangers.Add(forged);
        try
        {
            RendezvousClient.Connect("127.0.0.1", port, JobToken.Generate(), 1, 2, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));
        }
        catch (DistributedException e)
        {
            refusals.Add(e.Message);                                                        // a wrong token
        }
    }

    [Fact]
    public void StrangersAreDroppedWhileTheJobRunsToItsNormalEnd()
    {
        int port = LocalJob.FreePort();
        var strangers = new List<Socket>();
        var refusals = new List<string>();
        var attacker = Background.Run(() => Attack(port, strangers, refusals));
        var sums = LocalJob.Results(2, context =>
        {
            float total = 0;
            for (int step = 0; step < 40; step++)
            {
                var t = full(16384, (float)(context.Rank + 1));
                context.Collectives.AllReduce(t);
                context.Store!.Barrier("step");
                total += t[0].item<float>();
                Thread.Sleep(10);
            }
            return total;
        }, port: port);
        attacker.Result(Background.Patience);
        Assert.Equal([120f, 120f], sums);
        Assert.Contains(refusals, r => r.Contains("refused rank 1's job token"));
        Assert.All(strangers, s => Assert.True(ClosedByServer(s)));
    }

    [Fact]
    public void ASilentConnectionIsDroppedAfterTheHandshakeTimeoutAndDelaysNoRank()
    {
        using var store = new TestStore(2, handshakeTimeout: TimeSpan.FromMilliseconds(500));
        var silent = Enumerable.Range(0, 10).Select(_ => Connect(store.Port)).ToList();
        var clock = Stopwatch.StartNew();
        store.Join(0).Set("k", [1]);
        Assert.True(clock.Elapsed.TotalSeconds < 0.4, $"joining took {clock.Elapsed.TotalSeconds:F2} s behind silent connections");
        Assert.All(silent, s => Assert.True(ClosedByServer(s)));
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.4, 5);
        Assert.True(TestStore.Eventually(() => store.Server.RefusedConnections == 10, TimeSpan.FromSeconds(2)), $"{store.Server.RefusedConnections} refused");
    }

    [Fact]
    public void AFloodBeyondThePendingLimitIsRefusedAtOnce()
    {
        using var store = new TestStore(2);
        var flood = Enumerable.Range(0, RendezvousServer.MaxPendingHandshakes + 8).Select(_ => Connect(store.Port)).ToList();
        // The connections over the limit are closed without waiting for the handshake timeout.
        Assert.True(TestStore.Eventually(() => store.Server.RefusedConnections >= 8, TimeSpan.FromSeconds(2)),
            $"{store.Server.RefusedConnections} refused");
        foreach (var socket in flood) socket.Dispose();
        // Once the flood is gone, ranks join as usual.
        store.Join(1).Set("after", [1]);
    }

    [Fact]
    public void ForgedAndGarbageGreetingsAreRefusedOneByOne()
    {
        using var store = new TestStore(2);
        var forged = Connect(store.Port);
        var hello = new byte[Handshake.ServerHelloBytes];
        forged.Receive(hello);
        forged.Send(ForgedHello());
        var reply = new byte[Handshake.ReplyBytes];
        Assert.Equal(Handshake.ReplyBytes, forged.Receive(reply));
        Assert.Equal((byte)Handshake.Status.WrongToken, reply[0]);
        Assert.True(ClosedByServer(forged));

        var garbage = Connect(store.Port);
        garbage.Send(new byte[Handshake.ClientHelloBytes]);
        Assert.True(ClosedByServer(garbage));
        Assert.True(TestStore.Eventually(() => store.Server.RefusedConnections == 2, TimeSpan.FromSeconds(2)));
        Assert.Null(store.Server.Failure);
    }
}
