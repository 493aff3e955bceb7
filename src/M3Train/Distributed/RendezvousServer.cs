using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Serilog;

namespace M3Train.Distributed;

/// <summary>
/// The job's key-value store, hosted by rank 0: set/get, wait for a key, counters, and failure notices. It
/// listens only on the address it is given and admits only ranks that prove the job token (<see cref="Handshake"/>),
/// each rank once per role. Anything else — no token, a wrong one, garbage, a frame over the limit, a peer that
/// stays silent through the handshake timeout (5 s), more than <see cref="MaxPendingHandshakes"/> at once — is
/// dropped on its own connection's task, so strangers never delay the ranks.
/// </summary>
/// <remarks>
/// Failure model: the first failure recorded (a rank's <see cref="StoreOp.Fail"/>, or a rank's store connection
/// closing before it said <see cref="StoreOp.Leave"/>) is the run's failure. From then on every store operation
/// answers <see cref="StoreStatus.Failed"/> with it, and it is sent down every rank's watch connection, so every
/// rank learns which rank failed and why while its own thread is busy elsewhere.
/// </remarks>
public sealed class RendezvousServer : IDisposable
{
    public const int MaxPendingHandshakes = 64;
    public const long MaxStoreBytes = 64L << 20;
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long sending the run's failure down one watch connection may take before that rank is given up on.</summary>
    static readonly TimeSpan NoticeTimeout = TimeSpan.FromSeconds(5);
    const int LoggedRefusals = 10;

    readonly Socket _listener;
    readonly JobToken _token;
    readonly int _worldSize;
    readonly TimeSpan _handshakeTimeout;
    readonly CancellationTokenSource _stop = new();
    readonly object _gate = new();
    readonly Dictionary<string, byte[]> _values = [];
    readonly Dictionary<string, TaskCompletionSource<byte[]>> _waiting = [];
    readonly TaskCompletionSource<string> _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly TaskCompletionSource _allGone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly HashSet<(PeerRole, int)> _joined = [];
    readonly HashSet<int> _left = [];
    readonly HashSet<int> _toldLeft = [];
    readonly HashSet<int> _everJoined = [];
    readonly ConcurrentDictionary<WireSocket, PeerRole?> _open = new();
    readonly Task _acceptLoop;
    long _storedBytes;
    int _pending;
    int _refused;

    RendezvousServer(Socket listener, JobToken token, int worldSize, TimeSpan handshakeTimeout)
    {
        _listener = listener;
        _token = token;
        _worldSize = worldSize;
        _handshakeTimeout = handshakeTimeout;
        Endpoint = (IPEndPoint)listener.LocalEndPoint!;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Connections dropped before or at the handshake (strangers, wrong tokens, garbage, duplicates).</summary>
    public int RefusedConnections => Volatile.Read(ref _refused);

    /// <summary>The run's failure, once one was recorded.</summary>
    public string? Failure => _failed.Task.IsCompleted ? _failed.Task.Result : null;

    /// <summary>Listens on <paramref name="address"/>:<paramref name="port"/> (0: any free port) for a job of <paramref name="worldSize"/> ranks.</summary>
    public static RendezvousServer Start(IPAddress address, int port, JobToken token, int worldSize, TimeSpan? handshakeTimeout = null)
    {
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // A restarted job may find its port in TIME_WAIT from the last one; two live listeners still cannot share it.
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(new IPEndPoint(address, port));
            listener.Listen(128);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new DistributedException(e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse =>
                    $"cannot listen on {address}:{port} for the rendezvous: the port is in use (another job, or a run that has not ended); " +
                    $"choose another with --master-port or {DistributedVariables.RendezvousPort}.",
                SocketError.AddressNotAvailable =>
                    $"cannot listen on {address}:{port} for the rendezvous: {address} is not an address of this machine, and rank 0 hosts the rendezvous.",
                _ => $"cannot listen on {address}:{port} for the rendezvous: {e.Message}.",
            }, e);
        }
        return new RendezvousServer(listener, token, worldSize, handshakeTimeout ?? DefaultHandshakeTimeout);
    }

    /// <summary>
    /// Where rank 0 listens for <paramref name="masterAddress"/>: the first of its addresses that belongs to this
    /// machine (IPv4 first), so the rendezvous is reachable exactly where the other ranks will look for it.
    /// </summary>
    /// <param name="otherMachines">Ranks run on other machines too, so a loopback address would be out of their reach.</param>
    public static RendezvousServer StartOnMaster(string masterAddress, int port, JobToken token, int worldSize, bool otherMachines = false)
    {
        IPAddress[] candidates;
        try
        {
            candidates = IPAddress.TryParse(masterAddress, out var literal) ? [literal] : Dns.GetHostAddresses(masterAddress);
        }
        catch (SocketException e)
        {
            throw new DistributedException($"the master address '{masterAddress}' does not resolve: {e.Message}.", e);
        }
        var ordered = candidates.OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).ToList();
        if (otherMachines && ordered.All(IPAddress.IsLoopback))
            throw new DistributedException(
                $"the master address '{masterAddress}' is {string.Join(", ", ordered)} on rank 0's machine, a loopback address the other " +
                "machines cannot reach (Debian and Ubuntu map the host's own name to 127.0.1.1 in /etc/hosts); use rank 0's network address.");
        foreach (var address in ordered)
        {
            try
            {
                return Start(address, port, token, worldSize);
            }
            catch (DistributedException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.AddressNotAvailable })
            {
            }
        }
        throw new DistributedException(
            $"the master address '{masterAddress}' resolves to {string.Join(", ", ordered)}, none of which is an address of this machine; " +
            "rank 0 hosts the rendezvous, so the master address must name rank 0's host.");
    }

    /// <summary>Waits until every rank that joined has left or disconnected (rank 0 ends the store last).</summary>
    public bool WaitForRanksToLeave(TimeSpan timeout)
    {
        lock (_gate) CheckAllGone();
        return _allGone.Task.Wait(timeout);
    }

    async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            var wire = new WireSocket(socket);
            _open[wire] = null;
            _ = ServeAsync(wire);
        }
    }

    async Task ServeAsync(WireSocket socket)
    {
        await Task.Yield();
        string remote = socket.Remote;
        try
        {
            if (await AdmitAsync(socket, remote).ConfigureAwait(false) is not var (role, rank)) return;
            _open[socket] = role;
            try
            {
                if (role == PeerRole.Store) await ServeStoreAsync(socket, rank).ConfigureAwait(false);
                else await ServeWatchAsync(socket, rank).ConfigureAwait(false);
            }
            finally
            {
                Departed(role, rank);
            }
        }
        finally
        {
            _open.TryRemove(socket, out _);
            socket.Dispose();
        }
    }

    async Task<(PeerRole, int)?> AdmitAsync(WireSocket socket, string remote)
    {
        if (Interlocked.Increment(ref _pending) > MaxPendingHandshakes)
        {
            Interlocked.Decrement(ref _pending);
            Refused(remote, $"more than {MaxPendingHandshakes} connections are handshaking at once");
            return null;
        }
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            deadline.CancelAfter(_handshakeTimeout);
            var peer = await Handshake.AcceptAsync(socket, _token, Admit, deadline.Token).ConfigureAwait(false);
            if (peer is null) Refused(remote, "it did not prove the job token, or claimed a rank that is out of range or already joined");
            return peer;
        }
        catch (Exception e) when (e is OperationCanceledException)
        {
            Refused(remote, $"it did not complete the handshake within {_handshakeTimeout.TotalSeconds:0.#} s");
            return null;
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException or ObjectDisposedException)
        {
            Refused(remote, e.Message);
            return null;
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }
    }

    bool Admit(PeerRole role, int rank)
    {
        if (role == PeerRole.Ring || rank < 0 || rank >= _worldSize) return false;
        lock (_gate)
        {
            if (_left.Contains(rank) || !_joined.Add((role, rank))) return false;
            if (role == PeerRole.Store) _everJoined.Add(rank);
            return true;
        }
    }

    void Departed(PeerRole role, int rank)
    {
        lock (_gate)
        {
            _joined.Remove((role, rank));
            // A rank that fails sends its notice on the watch connection and then exits, closing both connections: only
            // once the watch is read to its end too is the rank gone without a word (else its notice may still be there).
            bool silent = !_joined.Contains((PeerRole.Store, rank)) && !_joined.Contains((PeerRole.Watch, rank));
            if (silent && _everJoined.Contains(rank) && !_left.Contains(rank) && !_stop.IsCancellationRequested)
                RecordFailure($"rank {rank} is gone: its connection to the rendezvous closed before it finished " +
                              "(the process was killed or crashed, or its machine became unreachable)");
            CheckAllGone();
        }
    }

    /// <summary>Every rank that joined has been told its leave was recorded, or its store connection is closed.</summary>
    void CheckAllGone()
    {
        if (_everJoined.All(r => _toldLeft.Contains(r) || !_joined.Contains((PeerRole.Store, r)))) _allGone.TrySetResult();
    }

    void Refused(string remote, string why)
    {
        int count = Interlocked.Increment(ref _refused);
        if (count <= LoggedRefusals)
            Log.Warning("rendezvous: dropped a connection from {Remote}: {Reason}{More}", remote, why,
                count == LoggedRefusals ? " (further refusals are counted, not logged)" : "");
    }

    async Task ServeStoreAsync(WireSocket socket, int rank)
    {
        while (true)
        {
            StoreMessage request;
            try
            {
                request = StoreMessage.DecodeRequest(await socket.ReadFrameAsync(StoreMessage.MaxFrameBytes, _stop.Token).ConfigureAwait(false));
            }
            catch (InvalidDataException e)
            {
                Log.Error("rendezvous: rank {Rank} sent a malformed request ({Reason}); closing its connection", rank, e.Message);
                return;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            var reply = await AnswerAsync(request, rank).ConfigureAwait(false);
            try
            {
                await socket.WriteFrameAsync(reply.EncodeReply(), _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            if (request.Op == StoreOp.Leave)
                lock (_gate)
                {
                    // Only now may rank 0 close the store: closing it before this reply went out made the
                    // leaving rank read the end of the connection as rank 0's death.
                    _toldLeft.Add(rank);
                    CheckAllGone();
                }
        }
    }

    /// <summary>
    /// The watch connection: its reply is the run's failure, sent when one is recorded; meanwhile the rank may send
    /// <see cref="StoreOp.Fail"/> on it (no reply), which a long wait on its store connection cannot hold up.
    /// </summary>
    async Task ServeWatchAsync(WireSocket socket, int rank)
    {
        var reading = ReadFailuresAsync(socket, rank);
        if (await Task.WhenAny(_failed.Task, reading).ConfigureAwait(false) != _failed.Task) return;
        try
        {
            using var limit = new CancellationTokenSource(NoticeTimeout);
            await socket.WriteFrameAsync(StoreMessage.Reply(StoreStatus.Failed, text: _failed.Task.Result).EncodeReply(), limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    async Task ReadFailuresAsync(WireSocket socket, int rank)
    {
        try
        {
            while (true)
            {
                var request = StoreMessage.DecodeRequest(await socket.ReadFrameAsync(StoreMessage.MaxFrameBytes, _stop.Token).ConfigureAwait(false));
                if (request.Op == StoreOp.Fail) RecordFailure($"rank {rank} failed: {Encoding.UTF8.GetString(request.Value)}");
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidDataException)
        {
        }
    }

    async Task<StoreMessage> AnswerAsync(StoreMessage request, int rank)
    {
        switch (request.Op)
        {
            case StoreOp.Fail:
                RecordFailure($"rank {rank} failed: {Encoding.UTF8.GetString(request.Value)}");
                return StoreMessage.Reply(StoreStatus.Ok);
            case StoreOp.Leave:
                lock (_gate) _left.Add(rank);
                return StoreMessage.Reply(StoreStatus.Ok);
        }
        if (Failure is { } failure) return StoreMessage.Reply(StoreStatus.Failed, text: failure);
        switch (request.Op)
        {
            case StoreOp.Set:
                lock (_gate) return Store(request.Key, request.Value);
            case StoreOp.Get:
                lock (_gate)
                    return _values.TryGetValue(request.Key, out var value) ? StoreMessage.Reply(StoreStatus.Value, value) : StoreMessage.Reply(StoreStatus.Absent);
            case StoreOp.Add:
                lock (_gate)
                {
                    long current = 0;
                    if (_values.TryGetValue(request.Key, out var existing))
                    {
                        if (existing.Length != 8) return StoreMessage.Reply(StoreStatus.Refused, text: $"'{request.Key}' holds a value, not a counter");
                        current = BinaryPrimitives.ReadInt64LittleEndian(existing);
                    }
                    var next = new byte[8];
                    BinaryPrimitives.WriteInt64LittleEndian(next, current + request.Number);
                    var stored = Store(request.Key, next);
                    return stored.Status == StoreStatus.Ok ? StoreMessage.Reply(StoreStatus.Counter, number: current + request.Number) : stored;
                }
            case StoreOp.Wait:
                return await WaitAsync(request.Key, TimeSpan.FromMilliseconds(Math.Clamp(request.Number, 0, int.MaxValue))).ConfigureAwait(false);
            default:
                return StoreMessage.Reply(StoreStatus.Refused, text: $"{request.Op} is not an operation of the store connection");
        }
    }

    StoreMessage Store(string key, byte[] value)
    {
        long grown = value.Length + (_values.TryGetValue(key, out var old) ? -old.Length : key.Length);
        if (_storedBytes + grown > MaxStoreBytes)
            return StoreMessage.Reply(StoreStatus.Refused, text: $"the store would exceed {MaxStoreBytes >> 20} MiB");
        _storedBytes += grown;
        _values[key] = value;
        if (_waiting.Remove(key, out var waiter)) waiter.TrySetResult(value);
        return StoreMessage.Reply(StoreStatus.Ok);
    }

    async Task<StoreMessage> WaitAsync(string key, TimeSpan timeout)
    {
        Task<byte[]> value;
        lock (_gate)
        {
            if (_values.TryGetValue(key, out var present)) return StoreMessage.Reply(StoreStatus.Value, present);
            if (!_waiting.TryGetValue(key, out var waiter))
                _waiting[key] = waiter = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            value = waiter.Task;
        }
        using var expiry = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var delay = Task.Delay(timeout, expiry.Token);
        var first = await Task.WhenAny(value, _failed.Task, delay).ConfigureAwait(false);
        expiry.Cancel();
        if (Failure is { } failure) return StoreMessage.Reply(StoreStatus.Failed, text: failure);
        return first == value ? StoreMessage.Reply(StoreStatus.Value, value.Result) : StoreMessage.Reply(StoreStatus.Timeout);
    }

    void RecordFailure(string message)
    {
        if (message.Length > 2000) message = message[..2000] + "...";
        if (_failed.TrySetResult(message)) Log.Error("rendezvous: {Failure}", message);
    }

    public void Dispose()
    {
        // Rank 0 runs in this process and closes its connections before its rendezvous stops (DistributedContext disposes
        // the client first): read them to their end, so a failure notice it has just sent is recorded, not lost with the store.
        Until(() => { lock (_gate) return !_joined.Any(j => j.Item2 == 0); }, TimeSpan.FromSeconds(2));
        // A failure must reach every watching rank before the store goes away with rank 0's process: wait until each
        // notice is written or its write gave up.
        if (Failure != null) Until(() => !_open.Values.Contains(PeerRole.Watch), NoticeTimeout + TimeSpan.FromSeconds(1));
        _stop.Cancel();
        _listener.Dispose();
        foreach (var connection in _open.Keys) connection.Dispose();
        Until(() => _open.IsEmpty && _acceptLoop.IsCompleted, TimeSpan.FromSeconds(2));
    }

    static void Until(Func<bool> done, TimeSpan limit)
    {
        var end = DateTime.UtcNow + limit;
        while (!done() && DateTime.UtcNow < end) Thread.Sleep(5);
    }
}
