using System.Net;
using System.Net.Sockets;
using M3Train.Distributed;

namespace M3Train.Tests.Distributed;

/// <summary>A rendezvous on loopback and its ranks' clients, for store tests without processes.</summary>
internal sealed class TestStore : IDisposable
{
    readonly List<RendezvousClient> _clients = [];

    public TestStore(int worldSize, TimeSpan? timeout = null, TimeSpan? handshakeTimeout = null)
    {
        WorldSize = worldSize;
        Timeout = timeout ?? TimeSpan.FromSeconds(10);
        Server = RendezvousServer.Start(IPAddress.Loopback, 0, Token, worldSize, handshakeTimeout);
    }

    public JobToken Token { get; } = JobToken.Generate();
    public RendezvousServer Server { get; }
    public int WorldSize { get; }
    public TimeSpan Timeout { get; }
    public int Port => Server.Endpoint.Port;

    public RendezvousClient Join(int rank, JobToken? token = null)
    {
        var client = RendezvousClient.Connect("127.0.0.1", Port, token ?? Token, rank, WorldSize, Timeout, TimeSpan.FromSeconds(5));
        _clients.Add(client);
        return client;
    }

    /// <summary>A raw connection to the store's port, as a stranger would open it.</summary>
    public Socket Connect()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Connect(IPAddress.Loopback, Port);
        return socket;
    }

    public static bool Eventually(Func<bool> condition, TimeSpan within)
    {
        var end = DateTime.UtcNow + within;
        while (!condition())
        {
            if (DateTime.UtcNow > end) return false;
            Thread.Sleep(10);
        }
        return true;
    }

    public void Dispose()
    {
        foreach (var client in _clients) client.Dispose();
        Server.Dispose();
    }
}
