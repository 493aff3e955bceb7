using M3Train.Runtime;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>
/// This process's place in a multi-process job: its <see cref="LaunchEnvironment"/>, the rendezvous store
/// (hosted by rank 0) and the collectives for its device — NCCL for CUDA, the TCP ring for CPU, or a world of
/// one. Start it once per process, call <see cref="Finish"/> when the work is done on every rank, and
/// <see cref="Fail"/> with the exception when it is not, so every other rank ends with this rank's error.
/// </summary>
public sealed class DistributedContext : IDisposable
{
    readonly RendezvousServer? _server;
    readonly LauncherWatch? _launcherWatch;
    bool _finished;

    DistributedContext(LaunchEnvironment launch, Device device, RendezvousServer? server, RendezvousClient? store, ICollectives collectives, LauncherWatch? launcherWatch)
    {
        Launch = launch;
        Device = device;
        _server = server;
        Store = store;
        Collectives = collectives;
        _launcherWatch = launcherWatch;
    }

    public LaunchEnvironment Launch { get; }
    public Device Device { get; }
    public int Rank => Launch.Rank;
    public int WorldSize => Launch.WorldSize;
    public int LocalRank => Launch.LocalRank;
    public bool IsMain => Rank == 0;

    /// <summary>The rendezvous store; null for a single process.</summary>
    public RendezvousClient? Store { get; }

    public ICollectives Collectives { get; }

    /// <summary>
    /// The device a rank uses for <paramref name="requested"/>: plain <c>cuda</c> means one GPU per process,
    /// <c>cuda:LOCAL_RANK</c>, or <c>cuda:0</c> where the launcher shows each rank only its own GPU
    /// (SLURM's <c>--gpus-per-task=1</c> sets <c>CUDA_VISIBLE_DEVICES</c> per task).
    /// </summary>
    public static Device DeviceFor(string requested, LaunchEnvironment launch)
    {
        if (!requested.Trim().Equals("cuda", StringComparison.OrdinalIgnoreCase)) return TorchDevices.Resolve(requested);
        var any = TorchDevices.Resolve("cuda");
        return TorchDevices.Resolve(torch.cuda.device_count() == 1 ? $"cuda:{any.index}" : $"cuda:{launch.LocalRank}");
    }

    /// <summary>
    /// Joins the job: rank 0 starts the rendezvous, every rank connects and waits for all the others (up to the
    /// join timeout), then the collectives are linked. <paramref name="ncclWhenAlone"/> makes a world of one on
    /// a GPU use NCCL anyway (to check NCCL itself) instead of the trivial collectives.
    /// </summary>
    public static DistributedContext Start(LaunchEnvironment launch, Device device, bool ncclWhenAlone = false)
    {
        if (!launch.IsDistributed)
        {
            ICollectives alone = device.type == DeviceType.CUDA && ncclWhenAlone
                ? NcclCollectives.Create(null, 0, 1, Math.Max(device.index, 0), launch.Timeout, _ => { })
                : new SingleProcessCollectives();
            return new DistributedContext(launch, device, null, null, alone, null);
        }
        var token = launch.Token ?? throw new DistributedException($"{DistributedVariables.JobToken} is required for a multi-process run.");
        RendezvousServer? server = null;
        RendezvousClient? store = null;
        var launcherWatch = LauncherWatch.FromEnvironment();
        try
        {
            if (launch.Rank == 0)
                server = RendezvousServer.StartOnMaster(launch.MasterAddress, launch.RendezvousPort, token, launch.WorldSize,
                    otherMachines: launch.LocalWorldSize is { } local && local < launch.WorldSize);
            store = RendezvousClient.Connect(launch.MasterAddress, launch.RendezvousPort, token, launch.Rank, launch.WorldSize, launch.Timeout, launch.JoinTimeout);
            store.Barrier("join", launch.JoinTimeout);
            ICollectives collectives = device.type == DeviceType.CUDA
                ? NcclCollectives.Create(store, launch.Rank, launch.WorldSize, Math.Max(device.index, 0), launch.Timeout, store.ReportFailure)
                : TcpRingCollectives.Connect(store, token, store.ReportFailure);
            store.OnFailure(collectives.Abort);
            Log.Information("distributed: {Launch}, {Backend} on {Device}", launch, collectives.Backend, device);
            return new DistributedContext(launch, device, server, store, collectives, launcherWatch);
        }
        catch (Exception e)
        {
            store?.ReportFailure($"could not join the job: {e.Message}");
            store?.Dispose();
            server?.Dispose();
            launcherWatch?.Dispose();
            throw;
        }
    }

    /// <summary>Reports <paramref name="error"/> as this rank's failure to every rank (unless another rank's failure caused it).</summary>
    public void Fail(Exception error)
    {
        if (Store is null || Store.Failure != null) return;
        Store.ReportFailure(error is M3TrainException ? error.Message : $"{error.GetType().Name}: {error.Message}");
    }

    /// <summary>
    /// Every rank is done: waits for all of them, then leaves the job; rank 0 keeps the rendezvous up until every
    /// rank has left, so no rank mistakes the end of the job for rank 0's death.
    /// </summary>
    public void Finish()
    {
        if (Store is null)
        {
            _finished = true;
            return;
        }
        Store.Barrier("finish");
        Store.Leave();
        _server?.WaitForRanksToLeave(Launch.Timeout);
        _finished = true;
    }

    public void Dispose()
    {
        _launcherWatch?.Dispose();
        if (!_finished && Store is { Failure: null })
            Store.ReportFailure("it stopped before the end of the job without reporting an error (its log may say more)");
        Collectives.Dispose();
        Store?.Dispose();
        _server?.Dispose();
    }
}
