using TorchSharp;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>
/// Collectives on CPU tensors over a ring of TCP connections: rank r sends to r+1 and receives from r−1, links
/// set up through the rendezvous and authenticated with the job token like the store. All-reduce is the classic
/// reduce-scatter then all-gather (each rank moves 2(W−1)/W of the tensor, whatever W), all-gather is the second
/// half alone, broadcast a chunked pipeline from the root.
/// </summary>
/// <remarks>
/// <para>Determinism: segment c of an all-reduce is summed once, starting at rank c and going round the ring
/// (<c>x_c + x_{c+1} + ...</c> in that order), then copied to every rank; the same world size gives the same
/// bits on every rank and every run.</para>
/// <para>Ordering: collectives run one at a time on a worker thread, in the order they were started, and each
/// begins with a 32-byte header (sequence number, kind, dtype, size, root) checked against the predecessor's, so
/// ranks that disagree about the next collective fail with both descriptions instead of exchanging garbage.</para>
/// <para>Failure: a link that makes no progress for the timeout, or closes, fails the collective; the message is
/// the run's failure from the rendezvous when one arrives within 2 s (it names the rank that died), else this
/// rank's own observation, which it then reports to every rank.</para>
/// </remarks>
public sealed class TcpRingCollectives : ICollectives
{
    const int ChunkBytes = 4 << 20;
    const int HeaderBytes = 32;

    readonly WireSocket _next;
    readonly WireSocket _prev;
    readonly int _nextRank;
    readonly int _prevRank;
    readonly TimeSpan _timeout;
    readonly Action<string> _reportFailure;
    readonly BlockingCollection<RingOp> _queue = [];
    readonly Thread _worker;
    readonly CancellationTokenSource _abort = new();
    readonly ManualResetEventSlim _aborted = new();
    readonly object _starting = new();
    readonly nint _scratch;
    volatile string? _abortReason;
    volatile string? _broken;
    long _sequence;

    TcpRingCollectives(int rank, int worldSize, WireSocket next, WireSocket prev, TimeSpan timeout, Action<string> reportFailure)
    {
        Rank = rank;
        WorldSize = worldSize;
        _next = next;
        _prev = prev;
        _nextRank = (rank + 1) % worldSize;
        _prevRank = (rank - 1 + worldSize) % worldSize;
        _timeout = timeout;
        _reportFailure = reportFailure;
        _scratch = Marshal.AllocHGlobal(ChunkBytes);
        _worker = new Thread(Work) { IsBackground = true, Name = "m3 ring collectives" };
        _worker.Start();
    }

    public int Rank { get; }
    public int WorldSize { get; }
    public string Backend => "tcp-ring";

    /// <summary>
    /// Links this rank into the ring: listens on its address on the route to rank 0, publishes it in the store
    /// under <paramref name="name"/>, connects to its successor and admits only its predecessor.
    /// </summary>
    /// <param name="reportFailure">Tells every rank this one failed (the store's failure notice).</param>
    public static TcpRingCollectives Connect(RendezvousClient store, JobToken token, Action<string> reportFailure, string name = "ring")
    {
        int rank = store.Rank, world = store.WorldSize;
        int next = (rank + 1) % world, prev = (rank - 1 + world) % world;
        using var listener = new Socket(store.LocalAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(store.LocalAddress, 0));
        listener.Listen(16);
        store.Set($"{name}/address/{rank}", Encoding.UTF8.GetBytes(listener.LocalEndPoint!.ToString()!));
        var nextAddress = IPEndPoint.Parse(Encoding.UTF8.GetString(store.Wait($"{name}/address/{next}", waitingFor: $"rank {next}'s ring address")));
        var deadline = DateTime.UtcNow + store.Timeout;
        var accepting = AcceptPredecessorAsync(listener, token, prev, deadline);
        var connecting = ConnectSuccessorAsync(nextAddress, token, rank, next, deadline);
        try
        {
            Task.WaitAll(accepting, connecting);
        }
        catch (AggregateException e)
        {
            if (accepting.IsCompletedSuccessfully) accepting.Result.Dispose();
            if (connecting.IsCompletedSuccessfully) connecting.Result.Dispose();
            throw e.InnerExceptions.OfType<DistributedException>().FirstOrDefault()
                  ?? new DistributedException($"rank {rank} could not link into the CPU ring: {e.InnerException?.Message}", e);
        }
        return new TcpRingCollectives(rank, world, connecting.Result, accepting.Result, store.Timeout, reportFailure);
    }

    static async Task<WireSocket> AcceptPredecessorAsync(Socket listener, JobToken token, int prev, DateTime deadline)
    {
        using var limit = new CancellationTokenSource(deadline - DateTime.UtcNow);
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new DistributedException($"rank {prev} did not connect to this rank's ring link in time (it stalled or cannot reach this machine).");
            }
            var wire = new WireSocket(socket);
            try
            {
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(limit.Token);
                handshake.CancelAfter(RendezvousServer.DefaultHandshakeTimeout);
                if (await Handshake.AcceptAsync(wire, token, (role, rank) => role == PeerRole.Ring && rank == prev, handshake.Token).ConfigureAwait(false) is not null)
                    return wire;
            }
            catch (Exception e) when (e is IOException or SocketException or InvalidDataException or OperationCanceledException)
            {
            }
            wire.Dispose();
        }
    }

    static async Task<WireSocket> ConnectSuccessorAsync(IPEndPoint address, JobToken token, int rank, int next, DateTime deadline)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var limit = new CancellationTokenSource(deadline - DateTime.UtcNow);
            await socket.ConnectAsync(address, limit.Token).ConfigureAwait(false);
            var wire = new WireSocket(socket);
            await Handshake.ConnectAsync(wire, token, PeerRole.Ring, rank, $"rank {next}'s ring link at {address}", limit.Token).ConfigureAwait(false);
            return wire;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            socket.Dispose();
            throw new DistributedException($"rank {rank} could not connect to rank {next}'s ring link at {address}: {e.Message}", e);
        }
    }

    public ICollectiveWork StartAllReduce(Tensor tensor, ReduceOp op)
    {
        CollectiveArguments.AllReduce(tensor, op, DeviceType.CPU);
        return Enqueue(RingKind.AllReduce, tensor, null, op, 0);
    }

    public ICollectiveWork StartAllGather(Tensor input, Tensor output)
    {
        CollectiveArguments.AllGather(input, output, WorldSize, DeviceType.CPU);
        return Enqueue(RingKind.AllGather, input, output, ReduceOp.Sum, 0);
    }

    public ICollectiveWork StartBroadcast(Tensor tensor, int root)
    {
        CollectiveArguments.Broadcast(tensor, root, WorldSize, DeviceType.CPU);
        return Enqueue(RingKind.Broadcast, tensor, null, ReduceOp.Sum, root);
    }

    public void Barrier() => Enqueue(RingKind.Barrier, null, null, ReduceOp.Sum, 0).Wait();

    public void Abort(string reason)
    {
        if (_abortReason != null) return;
        _abortReason = reason;
        _aborted.Set();
        _abort.Cancel();
    }

    RingWork Enqueue(RingKind kind, Tensor? tensor, Tensor? output, ReduceOp op, int root)
    {
        lock (_starting)
        {
            var ring = new RingOp(++_sequence, kind, tensor, output, op, root);
            if (_broken is { } broken) ring.Done.SetException(new DistributedException(broken));
            else _queue.Add(ring);
            return new RingWork(ring.Done.Task);
        }
    }

    void Work()
    {
        foreach (var ring in _queue.GetConsumingEnumerable())
        {
            if (_broken is { } broken)
            {
                ring.Done.SetException(new DistributedException(broken));
                continue;
            }
            try
            {
                RunAsync(ring).GetAwaiter().GetResult();
                ring.Done.SetResult();
            }
            catch (RingFailure failure)
            {
                _broken = Explain(failure.Message);
                ring.Done.SetException(new DistributedException(_broken, failure));
            }
            catch (Exception e)
            {
                _broken = Explain($"{ring.Describe()} failed: {e.Message}");
                ring.Done.SetException(new DistributedException(_broken, e));
            }
        }
    }

    /// <summary>The run's failure if the rendezvous reports one within 2 s (it names the rank that died), else this rank's own, reported to all.</summary>
    string Explain(string observed)
    {
        if (_aborted.Wait(TimeSpan.FromSeconds(2))) return _abortReason!;
        _reportFailure(observed);
        return $"rank {Rank} failed: {observed}";
    }

    async Task RunAsync(RingOp ring)
    {
        string what = ring.Describe();
        await CheckHeaderAsync(ring, what).ConfigureAwait(false);
        switch (ring.Kind)
        {
            case RingKind.AllReduce:
                await AllReduceAsync(ring.Tensor!, ring.Op, what).ConfigureAwait(false);
                break;
            case RingKind.AllGather:
                await AllGatherAsync(ring.Tensor!, ring.Output!, what).ConfigureAwait(false);
                break;
            case RingKind.Broadcast:
                await BroadcastAsync(ring.Tensor!, ring.Root, what).ConfigureAwait(false);
                break;
            case RingKind.Barrier:
                await BarrierAsync(what).ConfigureAwait(false);
                break;
        }
    }

    async Task CheckHeaderAsync(RingOp ring, string what)
    {
        var ours = ring.Header();
        var theirs = new byte[HeaderBytes];
        await ExchangeAsync(ours, theirs, what).ConfigureAwait(false);
        if (!theirs.AsSpan().SequenceEqual(ours))
            throw new RingFailure($"collectives out of step: this rank is at {what} but rank {_prevRank} is at {RingOp.DescribeHeader(theirs)}; " +
                                  "every rank must start the same collectives, on tensors of the same shape and dtype, in the same order");
    }

    async Task AllReduceAsync(Tensor tensor, ReduceOp op, string what)
    {
        nint data = TensorMemory.Address(tensor);
        long count = tensor.numel();
        int size = (int)tensor.element_size();
        var dtype = tensor.dtype;
        (long Offset, long Bytes) Segment(int k)
        {
            long first = (long)((Int128)k * count / WorldSize), end = (long)((Int128)(k + 1) * count / WorldSize);
            return (first * size, (end - first) * size);
        }
        for (int t = 0; t < WorldSize - 1; t++)
        {
            var send = Segment(Mod(Rank - t));
            var receive = Segment(Mod(Rank - t - 1));
            await StepAsync(data + (nint)send.Offset, send.Bytes, data + (nint)receive.Offset, receive.Bytes, what, dtype, size).ConfigureAwait(false);
        }
        int owned = Mod(Rank + 1);
        var mine = Segment(owned);
        if (op == ReduceOp.Average)
            for (long at = 0; at < mine.Bytes; at += ChunkBytes)
                HostReduction.Divide(dtype, data + (nint)(mine.Offset + at), (int)(Math.Min(ChunkBytes, mine.Bytes - at) / size), WorldSize);
        await GatherPhaseAsync(data, Segment, owned, what).ConfigureAwait(false);
    }

    async Task AllGatherAsync(Tensor input, Tensor output, string what)
    {
        long bytes = TensorMemory.ByteCount(input);
        nint data = TensorMemory.Address(output);
        UnmanagedMemory.Copy(TensorMemory.Address(input), data + (nint)(Rank * bytes), bytes);
        await GatherPhaseAsync(data, k => (k * bytes, bytes), Rank, what).ConfigureAwait(false);
    }

    /// <summary>Circulates segments so every rank ends with all of them; rank r starts holding segment <paramref name="owned"/>.</summary>
    async Task GatherPhaseAsync(nint data, Func<int, (long Offset, long Bytes)> segment, int owned, string what)
    {
        for (int t = 0; t < WorldSize - 1; t++)
        {
            var send = segment(Mod(owned - t));
            var receive = segment(Mod(owned - t - 1));
            await StepAsync(data + (nint)send.Offset, send.Bytes, data + (nint)receive.Offset, receive.Bytes, what, null, 1).ConfigureAwait(false);
        }
    }

    async Task BroadcastAsync(Tensor tensor, int root, string what)
    {
        nint data = TensorMemory.Address(tensor);
        long bytes = TensorMemory.ByteCount(tensor);
        int chunks = (int)((bytes + ChunkBytes - 1) / ChunkBytes);
        int distance = Mod(Rank - root);
        bool receives = distance != 0, forwards = distance != WorldSize - 1;
        Memory<byte> Chunk(int i) => i < 0 || i >= chunks ? Memory<byte>.Empty
            : UnmanagedMemory.At(data + (nint)((long)i * ChunkBytes), Math.Min(ChunkBytes, bytes - (long)i * ChunkBytes));
        // Each rank forwards chunk i−1 while chunk i arrives, so the ring is a pipeline, not W−1 full copies in turn.
        for (int i = receives ? 0 : 1; i <= chunks; i++)
            await ExchangeAsync(forwards ? Chunk(i - 1) : Memory<byte>.Empty, receives ? Chunk(i) : Memory<byte>.Empty, what).ConfigureAwait(false);
    }

    /// <summary>One byte per rank around the ring: after W−1 steps every rank has heard, through its predecessors, from all.</summary>
    Task BarrierAsync(string what) => GatherPhaseAsync(_scratch, k => (k, 1), Rank, what);

    /// <summary>
    /// One ring step in chunks: sends [sendAt, +sendBytes) to the successor while receiving [receiveAt, +receiveBytes)
    /// from the predecessor, straight into place, or, with a <paramref name="reduce"/> dtype, into scratch and added there.
    /// </summary>
    async Task StepAsync(nint sendAt, long sendBytes, nint receiveAt, long receiveBytes, string what, ScalarType? reduce, int elementSize)
    {
        for (long at = 0; at < Math.Max(sendBytes, receiveBytes); at += ChunkBytes)
        {
            long send = Math.Clamp(sendBytes - at, 0, ChunkBytes), receive = Math.Clamp(receiveBytes - at, 0, ChunkBytes);
            nint target = reduce is null ? receiveAt + (nint)at : _scratch;
            await ExchangeAsync(UnmanagedMemory.At(sendAt + (nint)at, send), UnmanagedMemory.At(target, receive), what).ConfigureAwait(false);
            if (reduce is { } dtype && receive > 0) HostReduction.Add(dtype, receiveAt + (nint)at, _scratch, (int)(receive / elementSize));
        }
    }

    async Task ExchangeAsync(ReadOnlyMemory<byte> send, Memory<byte> receive, string what)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(_abort.Token);
        limit.CancelAfter(_timeout);
        var sending = send.IsEmpty ? Task.CompletedTask : _next.WriteAsync(send, limit.Token);
        var receiving = receive.IsEmpty ? Task.CompletedTask : _prev.ReadExactlyAsync(receive, limit.Token);
        var pending = new List<Task> { sending, receiving };
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending).ConfigureAwait(false);
            if (!done.IsCompletedSuccessfully)
            {
                limit.Cancel();
                throw Failure(what, receiving, done.Exception?.InnerException);
            }
            pending.Remove(done);
        }
    }

    RingFailure Failure(string what, Task receiving, Exception? error)
    {
        if (_abort.IsCancellationRequested) return new RingFailure($"{what} was aborted");
        if (error is null or OperationCanceledException)
            return new RingFailure(!receiving.IsCompletedSuccessfully
                ? $"{what} timed out after {_timeout.TotalSeconds:0.#} s: no data came from rank {_prevRank}"
                : $"{what} timed out after {_timeout.TotalSeconds:0.#} s: rank {_nextRank} took no data");
        bool fromPrevious = receiving.IsFaulted;
        return new RingFailure($"{what}: the link {(fromPrevious ? "from" : "to")} rank {(fromPrevious ? _prevRank : _nextRank)} broke ({error.Message})");
    }

    int Mod(int k) => ((k % WorldSize) + WorldSize) % WorldSize;

    public void Dispose()
    {
        if (_queue.IsAddingCompleted) return;
        _queue.CompleteAdding();
        if (!_worker.Join(TimeSpan.FromSeconds(1)))
        {
            Abort("the ring was closed while a collective was running");
            _worker.Join();
        }
        _next.Dispose();
        _prev.Dispose();
        Marshal.FreeHGlobal(_scratch);
        _abort.Dispose();
    }

    sealed class RingFailure(string message) : Exception(message);

    sealed class RingWork(Task task) : ICollectiveWork
    {
        public bool IsCompleted => task.IsCompleted;
        public void Wait() => task.GetAwaiter().GetResult();
    }

    enum RingKind : byte { AllReduce = 1, AllGather = 2, Broadcast = 3, Barrier = 4 }

    sealed record RingOp(long Sequence, RingKind Kind, Tensor? Tensor, Tensor? Output, ReduceOp Op, int Root)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        long Bytes => Tensor is null ? 0 : TensorMemory.ByteCount(Tensor);

        public byte[] Header()
        {
            var header = new byte[HeaderBytes];
            var span = header.AsSpan();
            BinaryPrimitives.WriteInt64LittleEndian(span, Sequence);
            span[8] = (byte)Kind;
            span[9] = Tensor is null ? (byte)0 : (byte)Tensor.dtype;
            span[10] = (byte)Op;
            BinaryPrimitives.WriteInt32LittleEndian(span[12..], Root);
            BinaryPrimitives.WriteInt64LittleEndian(span[16..], Bytes);
            return header;
        }

        public string Describe() => Describe(Sequence, Kind, Tensor?.dtype, Op, Root, Bytes);

        public static string DescribeHeader(byte[] header)
        {
            var kind = (RingKind)header[8];
            return Describe(BinaryPrimitives.ReadInt64LittleEndian(header), kind, kind == RingKind.Barrier ? null : (ScalarType)header[9],
                (ReduceOp)header[10], BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(12)), BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(16)));
        }

        static string Describe(long sequence, RingKind kind, ScalarType? dtype, ReduceOp op, int root, long bytes) => kind switch
        {
            RingKind.AllReduce => $"all_reduce #{sequence} ({op.ToString().ToLowerInvariant()}, {Size(bytes)} of {dtype})",
            RingKind.AllGather => $"all_gather #{sequence} ({Size(bytes)} of {dtype} per rank)",
            RingKind.Broadcast => $"broadcast #{sequence} (from rank {root}, {Size(bytes)} of {dtype})",
            RingKind.Barrier => $"barrier #{sequence}",
            _ => $"collective #{sequence} of unknown kind {(byte)kind}",
        };

        static string Size(long bytes) => bytes >= 1 << 20 ? $"{bytes / 1048576.0:0.#} MiB" : bytes >= 1024 ? $"{bytes / 1024.0:0.#} KiB" : $"{bytes} B";
    }
}
