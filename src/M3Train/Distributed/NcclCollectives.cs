using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>
/// Collectives on CUDA tensors through NCCL, on the tensors' device memory, one communicator per process and
/// device. Each collective runs on a stream of its own that first waits for libtorch's stream (an event), so it
/// sees every kernel libtorch queued before it and libtorch's stream keeps running while it does;
/// <see cref="ICollectiveWork.Wait"/> returns once it has finished.
/// </summary>
/// <remarks>
/// Failure: <c>Wait</c> polls the collective's completion event, NCCL's asynchronous error
/// (<c>ncclCommGetAsyncError</c>) and the rendezvous' failure notice; on an NCCL error, on another rank's
/// failure, or when the collective is still running after the timeout, it aborts the communicator
/// (<c>ncclCommAbort</c>, which also ends the kernels stuck in it) and throws. Communicator set-up
/// (<c>ncclCommInitRank</c>, which waits for every rank) runs on a helper thread with the same timeout.
/// </remarks>
public sealed unsafe class NcclCollectives : ICollectives
{
    readonly NcclLibrary _nccl;
    readonly int _device;
    readonly nint _context;
    readonly nint _stream;
    readonly TimeSpan _timeout;
    readonly Action<string> _reportFailure;
    readonly object _gate = new();
    nint _comm;
    volatile string? _abortReason;
    string? _broken;
    long _sequence;

    NcclCollectives(NcclLibrary nccl, int rank, int worldSize, int device, nint context, nint comm, TimeSpan timeout, Action<string> reportFailure)
    {
        _nccl = nccl;
        Rank = rank;
        WorldSize = worldSize;
        _device = device;
        _context = context;
        _comm = comm;
        _timeout = timeout;
        _reportFailure = reportFailure;
        _stream = CudaDriver.CreateStream();
    }

    public int Rank { get; }
    public int WorldSize { get; }
    public string Backend => $"nccl {_nccl.VersionText()}";

    /// <summary>
    /// Creates the communicator of <paramref name="worldSize"/> ranks on CUDA device <paramref name="device"/>:
    /// rank 0 makes the NCCL unique id and publishes it in <paramref name="store"/> (which a world of one does
    /// not need), the others wait for it.
    /// </summary>
    public static NcclCollectives Create(RendezvousClient? store, int rank, int worldSize, int device, TimeSpan timeout, Action<string> reportFailure)
    {
        var nccl = NcclLibrary.Instance;
        nint context = CudaDriver.UsePrimaryContext(device);
        NcclUniqueId id;
        if (rank == 0)
        {
            nccl.Check(nccl.GetUniqueId(&id), "ncclGetUniqueId");
            store?.Set("nccl/id", id.ToArray());
        }
        else
        {
            id = NcclUniqueId.FromArray((store ?? throw new ArgumentNullException(nameof(store)))
                .Wait("nccl/id", waitingFor: "rank 0's NCCL unique id"));
        }
        nint comm = InitRank(nccl, id, rank, worldSize, context, timeout);
        return new NcclCollectives(nccl, rank, worldSize, device, context, comm, timeout, reportFailure);
    }

    /// <summary>ncclCommInitRank blocks until every rank has called it; a helper thread turns a rank that never does into a timeout.</summary>
    static nint InitRank(NcclLibrary nccl, NcclUniqueId id, int rank, int worldSize, nint context, TimeSpan timeout)
    {
        nint comm = 0;
        int result = -1;
        var init = new Thread(() =>
        {
            CudaDriver.SetCurrent(context);
            nint created;
            result = nccl.CommInitRank(&created, worldSize, id, rank);
            comm = created;
        }) { IsBackground = true, Name = "m3 nccl init" };
        init.Start();
        if (!init.Join(timeout))
            throw new DistributedException($"ncclCommInitRank did not complete within {timeout.TotalSeconds:0} s: some rank did not reach NCCL set-up, or the ranks cannot reach each other (NCCL_DEBUG=INFO shows NCCL's view).");
        nccl.Check(result, "ncclCommInitRank");
        return comm;
    }

    public ICollectiveWork StartAllReduce(Tensor tensor, ReduceOp op)
    {
        CollectiveArguments.AllReduce(tensor, op, DeviceType.CUDA);
        nint data = TensorMemory.Address(tensor);
        return Launch("all_reduce", $"{op.ToString().ToLowerInvariant()}, {tensor.numel()} × {tensor.dtype}", [tensor],
            (comm, stream) => _nccl.AllReduce(data, data, (nuint)tensor.numel(), NcclTypes.DataType(tensor.dtype), NcclTypes.Operation(op), comm, stream));
    }

    public ICollectiveWork StartAllGather(Tensor input, Tensor output)
    {
        CollectiveArguments.AllGather(input, output, WorldSize, DeviceType.CUDA);
        nint source = TensorMemory.Address(input), target = TensorMemory.Address(output);
        // Gathering moves bytes, not numbers: any dtype travels as bytes.
        return Launch("all_gather", $"{input.numel()} × {input.dtype} per rank", [input, output],
            (comm, stream) => _nccl.AllGather(source, target, (nuint)TensorMemory.ByteCount(input), NcclTypes.Uint8, comm, stream));
    }

    public ICollectiveWork StartBroadcast(Tensor tensor, int root)
    {
        CollectiveArguments.Broadcast(tensor, root, WorldSize, DeviceType.CUDA);
        nint data = TensorMemory.Address(tensor);
        return Launch("broadcast", $"from rank {root}, {tensor.numel()} × {tensor.dtype}", [tensor],
            (comm, stream) => _nccl.Broadcast(data, data, (nuint)TensorMemory.ByteCount(tensor), NcclTypes.Uint8, root, comm, stream));
    }

    /// <summary>An all-reduce of one number: it completes on a rank only once every rank has started it.</summary>
    public void Barrier()
    {
        using var token = zeros(1, ScalarType.Int32, new Device(DeviceType.CUDA, _device));
        StartAllReduce(token, ReduceOp.Sum).Wait();
    }

    public void Abort(string reason)
    {
        _abortReason ??= reason;
        AbortCommunicator();
    }

    void AbortCommunicator()
    {
        lock (_gate)
        {
            if (_comm == 0) return;
            _nccl.CommAbort(_comm);
            _comm = 0;
        }
    }

    /// <summary>Queues <paramref name="collective"/> (given the communicator and stream) after libtorch's work so far.</summary>
    ICollectiveWork Launch(string kind, string detail, Tensor[] tensors, Func<nint, nint, int> collective)
    {
        if (tensors.FirstOrDefault(t => t.device_index != _device) is { } elsewhere)
            throw new ArgumentException($"this communicator is on cuda:{_device}; a tensor is on cuda:{elsewhere.device_index}");
        lock (_gate)
        {
            string description = $"{kind} #{++_sequence} ({detail})";
            if ((_broken ?? _abortReason) is { } failed) throw new DistributedException(failed);
            CudaDriver.SetCurrent(_context);
            nint ready = CudaDriver.Record(CudaDriver.LegacyStream);
            CudaDriver.Wait(_stream, ready);
            CudaDriver.Destroy(ready);
            _nccl.Check(collective(_comm, _stream), description);
            return new NcclWork(this, CudaDriver.Record(_stream), tensors, description);
        }
    }

    void Finish(NcclWork work)
    {
        CudaDriver.SetCurrent(_context);
        var clock = Stopwatch.StartNew();
        for (int polls = 0; ; polls++)
        {
            bool complete;
            try
            {
                complete = CudaDriver.IsComplete(work.Done);
            }
            catch (DistributedException e)
            {
                throw Broken($"{work.Description}: {e.Message}", report: true);
            }
            if (complete) return;
            if (_abortReason is { } reason) throw Broken(reason, report: false);
            if (AsyncError() is { } error) throw Broken($"{work.Description} failed in NCCL: {error}", report: true);
            if (clock.Elapsed > _timeout)
                throw Broken($"{work.Description} timed out after {_timeout.TotalSeconds:0} s on cuda:{_device} (a rank stalled, died or never started it)", report: true);
            // Spin briefly for small collectives' latency, then sleep so a long one does not burn a core.
            if (polls < 2000) Thread.SpinWait(50);
            else Thread.Sleep(1);
        }
    }

    string? AsyncError()
    {
        lock (_gate)
        {
            if (_comm == 0) return null;
            int state;
            _nccl.Check(_nccl.CommGetAsyncError(_comm, &state), "ncclCommGetAsyncError");
            return state is NcclTypes.Success or NcclTypes.InProgress ? null : _nccl.ErrorText(state);
        }
    }

    DistributedException Broken(string why, bool report)
    {
        AbortCommunicator();
        lock (_gate)
        {
            if (_broken is null)
            {
                if (report) _reportFailure(why);
                _broken = report ? $"rank {Rank} failed: {why}" : why;
            }
            return new DistributedException(_broken);
        }
    }

    bool IsComplete(nint done)
    {
        CudaDriver.SetCurrent(_context);
        return CudaDriver.IsComplete(done);
    }

    public void Dispose()
    {
        CudaDriver.SetCurrent(_context);
        lock (_gate)
        {
            if (_comm != 0)
            {
                _nccl.CommDestroy(_comm);
                _comm = 0;
            }
        }
        CudaDriver.DestroyStream(_stream);
    }

    sealed class NcclWork(NcclCollectives owner, nint done, Tensor[] tensors, string description) : ICollectiveWork
    {
        bool _finished;

        public nint Done => done;
        public string Description => description;
        public bool IsCompleted => _finished || owner.IsComplete(done);

        public void Wait()
        {
            if (_finished) return;
            try
            {
                owner.Finish(this);
            }
            finally
            {
                _finished = true;
                CudaDriver.Destroy(done);
                GC.KeepAlive(tensors);
            }
        }
    }
}
