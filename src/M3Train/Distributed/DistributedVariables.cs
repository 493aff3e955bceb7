namespace M3Train.Distributed;

/// <summary>
/// The environment variables <c>m3train launch</c> sets for each rank, and those a user sets under torchrun or
/// SLURM. The launcher's own names take precedence over torchrun's, and torchrun's over SLURM's, so a launcher
/// started inside a SLURM allocation or under torchrun still describes its own children.
/// </summary>
public static class DistributedVariables
{
    public const string Rank = "M3_RANK";
    public const string WorldSize = "M3_WORLD_SIZE";
    public const string LocalRank = "M3_LOCAL_RANK";
    public const string LocalWorldSize = "M3_LOCAL_WORLD_SIZE";
    public const string MasterAddress = "M3_MASTER_ADDR";

    /// <summary>The rendezvous port; under torchrun and SLURM an override of the default (MASTER_PORT + 1).</summary>
    public const string RendezvousPort = "M3_RDZV_PORT";

    /// <summary>The shared secret every rank presents to the rendezvous and to its ring neighbours.</summary>
    public const string JobToken = "M3_JOB_TOKEN";

    /// <summary>The launcher's process id: a rank whose launcher is gone stops as if told to (SIGTERM).</summary>
    public const string LauncherPid = "M3_LAUNCHER_PID";

    /// <summary>Seconds a collective or a store wait may take before the run is declared stalled (default 45).</summary>
    public const string Timeout = "M3_DIST_TIMEOUT";

    /// <summary>Seconds to wait for every rank to join at start-up (default 300).</summary>
    public const string JoinTimeout = "M3_RDZV_TIMEOUT";
}
