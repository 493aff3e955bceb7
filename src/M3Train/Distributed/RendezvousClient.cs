using System.Net;
using System.Net.Sockets;
using System.Text;

namespace M3Train.Distributed;

/// <summary>
/// A rank's two connections to the <see cref="RendezvousServer"/>: one for requests (set, get, wait, add,
/// barriers), and a watch connection on which this rank reports its own failure and receives the run's, so a
/// failure anywhere reaches this rank while its own thread is busy elsewhere (a collective, a forward pass). <see cref="OnFailure"/> handlers run then, which is
/// how collectives are aborted instead of waiting for their timeout.
/// </summary>
public sealed class RendezvousClient : IDisposable
{
    /// <summary>The grace a store reply gets beyond the wait it answers, before rank 0 is declared unresponsive.</summary>
    static readonly TimeSpan ReplyMargin = TimeSpan.FromSeconds(10);

    readonly WireSocket _store;
    readonly WireSocket _watch;
    readonly string _listener;
    readonly object _requests = new();
    readonly object _handlers = new();
    readonly List<Action<string>> _onFailure = [];
    readonly Dictionary<string, int> _barrierGenerations = [];
    readonly ManualResetEventSlim _failed = new();
    volatile string? _failure;
    volatile bool _leaving;

    RendezvousClient(WireSocket store, WireSocket watch, string listener, int rank, int worldSize, TimeSpan timeout)
    {
        _store = store;
        _watch = watch;
        _listener = listener;
        Rank = rank;
        WorldSize = worldSize;
        Timeout = timeout;
        _ = Task.Run(WatchAsync);
    }

    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>How long waits and barriers take before the run is declared stalled (unless a call says otherwise).</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The run's failure once this rank knows of one: another rank's, or the loss of the rendezvous.</summary>
    public string? Failure => _failure;

    /// <summary>This machine's address on the route to rank 0: where the other ranks can reach this one.</summary>
    public IPAddress LocalAddress
    {
        get
        {
            // The socket is dual-stack: an IPv4 route shows as an IPv4-mapped IPv6 address.
            var address = ((IPEndPoint)_store.Socket.LocalEndPoint!).Address;
            return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        }
    }

    /// <summary>
    /// Connects to the rendezvous at <paramref name="host"/>:<paramref name="port"/> as <paramref name="rank"/>,
    /// retrying for <paramref name="joinTimeout"/> while rank 0 is not listening yet.
    /// </summary>
    public static RendezvousClient Connect(string host, int port, JobToken token, int rank, int worldSize, TimeSpan timeout, TimeSpan joinTimeout)
    {
        string listener = $"the rendezvous at {host}:{port}";
        var deadline = DateTime.UtcNow + joinTimeout;
        var store = ConnectAsync(host, port, token, PeerRole.Store, rank, listener, deadline).GetAwaiter().GetResult();
        try
        {
            var watch = ConnectAsync(host, port, token, PeerRole.Watch, rank, listener, deadline).GetAwaiter().GetResult();
            return new RendezvousClient(store, watch, listener, rank, worldSize, timeout);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    static async Task<WireSocket> ConnectAsync(string host, int port, JobToken token, PeerRole role, int rank, string listener, DateTime deadline)
    {
        var pause = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                using var attempt = new CancellationTokenSource(Remaining(deadline, TimeSpan.FromSeconds(10)));
                await socket.ConnectAsync(host, port, attempt.Token).ConfigureAwait(false);
                var wire = new WireSocket(socket);
                try
                {
                    await Handshake.ConnectAsync(wire, token, role, rank, listener, attempt.Token).ConfigureAwait(false);
                    return wire;
                }
                catch
                {
                    wire.Dispose();
                    throw;
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
            {
                socket.Dispose();
                if (DateTime.UtcNow + pause >= deadline)
                    throw new DistributedException(
                        $"rank {rank} could not join {listener}: {(e is OperationCanceledException ? "no answer" : e.Message)}. " +
                        "Is rank 0 running, and does the master address name its host? (A firewall between the machines looks the same.)", e);
                await Task.Delay(pause).ConfigureAwait(false);
                pause = TimeSpan.FromMilliseconds(Math.Min(1000, pause.TotalMilliseconds * 2));
            }
        }
    }

    static TimeSpan Remaining(DateTime deadline, TimeSpan cap)
    {
        var left = deadline - DateTime.UtcNow;
        return left < TimeSpan.FromMilliseconds(100) ? TimeSpan.FromMilliseconds(100) : left < cap ? left : cap;
    }

    /// <summary>Runs <paramref name="handler"/> with the failure message when this rank learns of one (at once if it already has).</summary>
    public void OnFailure(Action<string> handler)
    {
        lock (_handlers)
        {
            if (_failure is null)
            {
                _onFailure.Add(handler);
                return;
            }
        }
        handler(_failure);
    }

    public void Set(string key, byte[] value) => Request(StoreMessage.Request(StoreOp.Set, key, value), ReplyMargin);

    public byte[]? Get(string key)
    {
        var reply = Request(StoreMessage.Request(StoreOp.Get, key), ReplyMargin);
        return reply.Status == StoreStatus.Value ? reply.Value : null;
    }

    public long Add(string key, long delta) => Request(StoreMessage.Request(StoreOp.Add, key, number: delta), ReplyMargin).Number;

    /// <summary>The value of <paramref name="key"/> once some rank sets it; a timeout is reported as this rank's failure.</summary>
    public byte[] Wait(string key, TimeSpan? timeout = null, string? waitingFor = null)
    {
        var limit = timeout ?? Timeout;
        var reply = WaitFor(key, limit);
        if (reply.Status == StoreStatus.Value) return reply.Value;
        throw Stalled($"waited {limit.TotalSeconds:0.#} s for {waitingFor ?? $"'{key}'"} in the rendezvous");
    }

    /// <summary>
    /// Returns once every rank has called it with the same <paramref name="name"/> (as often). On a timeout the
    /// failure names the ranks that did not arrive.
    /// </summary>
    public void Barrier(string name, TimeSpan? timeout = null)
    {
        int generation;
        lock (_barrierGenerations)
        {
            _barrierGenerations[name] = generation = _barrierGenerations.GetValueOrDefault(name) + 1;
        }
        string key = $"barrier/{name}/{generation}";
        Set($"{key}/rank/{Rank}", []);
        if (Add(key, 1) == WorldSize) Set($"{key}/done", []);
        var limit = timeout ?? Timeout;
        if (WaitFor($"{key}/done", limit).Status == StoreStatus.Value) return;
        var missing = Enumerable.Range(0, WorldSize).Where(r => Get($"{key}/rank/{r}") is null).ToList();
        throw Stalled($"barrier '{name}' timed out after {limit.TotalSeconds:0.#} s: " +
                      (missing.Count == 0 ? "every rank arrived, but the store did not release them"
                          : $"rank{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} did not arrive (stalled, or still busy elsewhere)"));
    }

    /// <summary>
    /// Waits up to <paramref name="limit"/> for <paramref name="key"/>, asking again every <see cref="Timeout"/>: a wait
    /// longer than that (rank 0 writing a checkpoint) still notices within the timeout when the rendezvous stops
    /// answering (rank 0 stopped or its machine gone).
    /// </summary>
    StoreMessage WaitFor(string key, TimeSpan limit)
    {
        var end = DateTime.UtcNow + limit;
        while (true)
        {
            var left = end - DateTime.UtcNow;
            var slice = left < Timeout ? left : Timeout;
            if (slice < TimeSpan.Zero) slice = TimeSpan.Zero;
            var reply = Request(StoreMessage.Request(StoreOp.Wait, key, number: (long)slice.TotalMilliseconds), slice + ReplyMargin);
            if (reply.Status == StoreStatus.Value || DateTime.UtcNow >= end) return reply;
        }
    }

    /// <summary>Tells every rank that this one failed, unless a failure is already known (then that one is the cause).</summary>
    public void ReportFailure(string message)
    {
        if (_failure != null) return;
        byte[] text = Encoding.UTF8.GetBytes(message.Length > 2000 ? message[..2000] : message);
        try
        {
            lock (_watch)
            {
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                _watch.WriteFrameAsync(StoreMessage.Request(StoreOp.Fail, value: text).EncodeRequest(), limit.Token).GetAwaiter().GetResult();
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
        {
        }
        Fail($"rank {Rank} failed: {message}");
    }

    /// <summary>This rank is done: its connections closing from now on are not a failure.</summary>
    public void Leave()
    {
        _leaving = true;
        Request(StoreMessage.Request(StoreOp.Leave), ReplyMargin);
    }

    DistributedException Stalled(string what)
    {
        ReportFailure(what);
        return new DistributedException(_failure ?? $"rank {Rank} failed: {what}");
    }

    StoreMessage Request(StoreMessage request, TimeSpan replyWithin)
    {
        if (_failure is { } known) throw new DistributedException(known);
        StoreMessage reply;
        try
        {
            lock (_requests)
            {
                using var limit = new CancellationTokenSource(replyWithin);
                _store.WriteFrameAsync(request.EncodeRequest(), limit.Token).GetAwaiter().GetResult();
                reply = StoreMessage.DecodeReply(_store.ReadFrameAsync(StoreMessage.MaxFrameBytes, limit.Token).GetAwaiter().GetResult());
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
        {
            // The watch usually explains a lost connection (which rank failed) a moment later. Either way the
            // connection may hold a late reply now, so this client takes no more requests.
            _failed.Wait(TimeSpan.FromSeconds(2));
            Fail(Lost(e is OperationCanceledException ? $"it did not answer within {replyWithin.TotalSeconds:0.#} s" : e.Message));
            throw new DistributedException(_failure!, e);
        }
        switch (reply.Status)
        {
            case StoreStatus.Failed:
                Fail(reply.Text);
                throw new DistributedException(reply.Text);
            case StoreStatus.Refused:
                throw new DistributedException($"{_listener} refused {request.Op} '{request.Key}': {reply.Text}.");
            default:
                return reply;
        }
    }

    string Lost(string why) => $"rank 0 is gone: {_listener} was lost ({why}); rank 0 was killed or crashed, or its machine became unreachable";

    async Task WatchAsync()
    {
        string failure;
        try
        {
            var reply = StoreMessage.DecodeReply(await _watch.ReadFrameAsync(StoreMessage.MaxFrameBytes, CancellationToken.None).ConfigureAwait(false));
            failure = reply.Text;
        }
        catch (Exception e)
        {
            if (_leaving) return;
            failure = Lost(e.Message);
        }
        Fail(failure);
    }

    void Fail(string failure)
    {
        List<Action<string>> handlers;
        lock (_handlers)
        {
            if (_failure != null) return;
            _failure = failure;
            handlers = [.. _onFailure];
            _onFailure.Clear();
        }
        _failed.Set();
        foreach (var handler in handlers) handler(failure);
    }

    public void Dispose()
    {
        _leaving = true;
        _watch.Dispose();
        _store.Dispose();
    }
}
