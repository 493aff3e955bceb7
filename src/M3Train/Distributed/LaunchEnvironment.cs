using System.Globalization;

namespace M3Train.Distributed;

/// <summary>
/// Who this process is in a multi-process run: its rank, the world size, its rank on its machine, where the
/// rendezvous listens and the job's token, read from the variables of whichever launcher started it
/// (<c>m3train launch</c>, torchrun, SLURM <c>srun</c>), or a single process when none did.
/// </summary>
/// <remarks>
/// The rendezvous port: <c>m3train launch</c> passes its own. Under torchrun it is <c>M3_RDZV_PORT</c>, else
/// <c>MASTER_PORT + 1</c>, because torchrun's own store already listens on <c>MASTER_PORT</c>. Under SLURM it is
/// <c>M3_RDZV_PORT</c>, else <c>MASTER_PORT + 1</c>, else 20000 + <c>SLURM_JOB_ID</c> mod 10000, which every task
/// of the job computes alike. A multi-process run needs <c>M3_JOB_TOKEN</c> (launch makes one).
/// </remarks>
public sealed record LaunchEnvironment
{
    public const int SlurmPortBase = 20000;
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(45);
    public static readonly TimeSpan DefaultJoinTimeout = TimeSpan.FromSeconds(300);

    public required Launcher Launcher { get; init; }
    public required int Rank { get; init; }
    public required int WorldSize { get; init; }
    public required int LocalRank { get; init; }

    /// <summary>Ranks on this machine, when the launcher says (SLURM does not always).</summary>
    public int? LocalWorldSize { get; init; }

    /// <summary>
    /// How many ranks share the cores this process sees, for its default libtorch threads: the ranks on this machine
    /// under <c>m3train launch</c> and torchrun, whose ranks all see every core; 1 under SLURM, whose
    /// <c>--cpus-per-task</c> gives each task its own cores, so the cores it sees are already its share.
    /// </summary>
    public int RanksSharingCores => Launcher == Launcher.Slurm ? 1 : LocalWorldSize ?? 1;

    /// <summary>The host of rank 0, where the rendezvous listens.</summary>
    public string MasterAddress { get; init; } = "127.0.0.1";

    public int RendezvousPort { get; init; }
    public JobToken? Token { get; init; }

    /// <summary>How long a collective or a store wait may take before the run is declared stalled.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>How long start-up waits for every rank to join.</summary>
    public TimeSpan JoinTimeout { get; init; } = DefaultJoinTimeout;

    public bool IsDistributed => WorldSize > 1;

    public static LaunchEnvironment SingleProcess { get; } = new() { Launcher = Launcher.None, Rank = 0, WorldSize = 1, LocalRank = 0, LocalWorldSize = 1 };

    public static LaunchEnvironment FromProcess() => Resolve(Environment.GetEnvironmentVariable);

    /// <summary>Reads the launcher's variables through <paramref name="variable"/> (null when unset).</summary>
    public static LaunchEnvironment Resolve(Func<string, string?> variable)
    {
        var read = new Reader(variable);
        var environment = read.Has(DistributedVariables.Rank) || read.Has(DistributedVariables.WorldSize) ? FromM3Launch(read)
            : read.Has("RANK") || read.Has("WORLD_SIZE") ? FromTorchrun(read)
            : read.Has("SLURM_PROCID") && read.Has("SLURM_STEP_ID") ? FromSlurm(read)
            : SingleProcess;
        return environment with
        {
            Timeout = read.Seconds(DistributedVariables.Timeout) ?? DefaultTimeout,
            JoinTimeout = read.Seconds(DistributedVariables.JoinTimeout) ?? DefaultJoinTimeout,
        };
    }

    static LaunchEnvironment FromM3Launch(Reader read)
    {
        var (rank, world) = read.RankAndWorld(DistributedVariables.Rank, DistributedVariables.WorldSize, "m3train launch");
        var (localRank, localWorld) = read.LocalRank(DistributedVariables.LocalRank, DistributedVariables.LocalWorldSize, "m3train launch");
        return new LaunchEnvironment
        {
            Launcher = Launcher.M3Launch, Rank = rank, WorldSize = world, LocalRank = localRank, LocalWorldSize = localWorld,
            MasterAddress = read.Required(DistributedVariables.MasterAddress, "m3train launch"),
            RendezvousPort = read.Port(DistributedVariables.RendezvousPort) ?? throw read.Missing(DistributedVariables.RendezvousPort, "m3train launch"),
            Token = read.Token("m3train launch generates it"),
        };
    }

    static LaunchEnvironment FromTorchrun(Reader read)
    {
        var (rank, world) = read.RankAndWorld("RANK", "WORLD_SIZE", "torchrun");
        var (localRank, localWorld) = read.LocalRank("LOCAL_RANK", "LOCAL_WORLD_SIZE", "torchrun");
        var environment = new LaunchEnvironment { Launcher = Launcher.Torchrun, Rank = rank, WorldSize = world, LocalRank = localRank, LocalWorldSize = localWorld };
        if (world == 1) return environment;
        int masterPort = read.Port("MASTER_PORT") ?? throw read.Missing("MASTER_PORT", "torchrun");
        return environment with
        {
            MasterAddress = read.Required("MASTER_ADDR", "torchrun"),
            RendezvousPort = read.Port(DistributedVariables.RendezvousPort) ?? NextPort(masterPort, "MASTER_PORT"),
            Token = read.Token("under torchrun, export the same value on every node before torchrun"),
        };
    }

    static LaunchEnvironment FromSlurm(Reader read)
    {
        var (rank, world) = read.RankAndWorld("SLURM_PROCID", "SLURM_NTASKS", "srun");
        var (localRank, _) = read.LocalRank("SLURM_LOCALID", null, "srun");
        var environment = new LaunchEnvironment
        {
            Launcher = Launcher.Slurm, Rank = rank, WorldSize = world, LocalRank = localRank,
            LocalWorldSize = read.Integer("SLURM_NTASKS_PER_NODE", 1, int.MaxValue, lenient: true),
        };
        if (world == 1) return environment;
        string master = read.Value(DistributedVariables.MasterAddress) ?? read.Value("MASTER_ADDR")
            ?? FirstNode(read) ?? throw new DistributedException(
                "SLURM_STEP_NODELIST and SLURM_JOB_NODELIST are both unset, so rank 0's host is unknown: run under srun, or set MASTER_ADDR.");
        int port = read.Port(DistributedVariables.RendezvousPort)
                   ?? (read.Port("MASTER_PORT") is { } masterPort ? (int?)NextPort(masterPort, "MASTER_PORT") : null)
                   ?? SlurmPortBase + (int)((read.Integer("SLURM_JOB_ID", 0, int.MaxValue) ?? throw read.Missing("SLURM_JOB_ID", "srun")) % 10000);
        return environment with
        {
            MasterAddress = master, RendezvousPort = port,
            Token = read.Token("in the sbatch script, export it before srun: export M3_JOB_TOKEN=$(openssl rand -hex 32)"),
        };
    }

    /// <summary>srun starts task 0 on the first node of the step, so that node hosts the rendezvous.</summary>
    static string? FirstNode(Reader read)
    {
        foreach (string name in new[] { "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST" })
            if (read.Value(name) is { } list) return SlurmHostList.First(list, name);
        return null;
    }

    static int NextPort(int port, string variable) => port < 65535 ? port + 1
        : throw new DistributedException($"{variable}=65535 leaves no port above it for the rendezvous; set {DistributedVariables.RendezvousPort}.");

    public override string ToString() => WorldSize == 1 && Launcher == Launcher.None
        ? "one process"
        : $"rank {Rank} of {WorldSize} (local rank {LocalRank}{(LocalWorldSize is { } n ? $" of {n}" : "")}), started by {LauncherName(Launcher)}" +
          (WorldSize > 1 ? $", rendezvous {MasterAddress}:{RendezvousPort}" : "");

    static string LauncherName(Launcher launcher) => launcher switch
    {
        Launcher.M3Launch => "m3train launch",
        Launcher.Torchrun => "torchrun",
        Launcher.Slurm => "srun",
        _ => "no launcher",
    };

    sealed class Reader(Func<string, string?> variable)
    {
        public string? Value(string name) => variable(name) is { } v && v.Trim().Length > 0 ? v.Trim() : null;

        public bool Has(string name) => Value(name) != null;

        public DistributedException Missing(string name, string launcher) =>
            new($"{name} is not set, though other variables of {launcher} are: start every rank through {launcher}, or set {name}.");

        public string Required(string name, string launcher) => Value(name) ?? throw Missing(name, launcher);

        public int? Integer(string name, int min, int max, bool lenient = false)
        {
            if (Value(name) is not { } text) return null;
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < min || n > max)
            {
                if (lenient) return null;
                throw new DistributedException($"{name}='{text}' is not a whole number from {min} to {max}.");
            }
            return (int)n;
        }

        public int? Port(string name) => Integer(name, 1, 65535);

        public (int Rank, int World) RankAndWorld(string rankName, string worldName, string launcher)
        {
            int world = Integer(worldName, 1, 1 << 20) ?? throw Missing(worldName, launcher);
            int rank = Integer(rankName, 0, 1 << 20) ?? throw Missing(rankName, launcher);
            if (rank >= world)
                throw new DistributedException($"{rankName}={rank} is not below {worldName}={world}: ranks count from 0 to {worldName} - 1.");
            return (rank, world);
        }

        public (int LocalRank, int? LocalWorld) LocalRank(string rankName, string? worldName, string launcher)
        {
            int local = Integer(rankName, 0, 1 << 20) ?? throw Missing(rankName, launcher);
            int? localWorld = worldName is null ? null : Integer(worldName, 1, 1 << 20);
            if (localWorld is { } n && local >= n)
                throw new DistributedException($"{rankName}={local} is not below {worldName}={n}.");
            return (local, localWorld);
        }

        public JobToken Token(string hint) => Value(DistributedVariables.JobToken) is { } token
            ? JobToken.Parse(token, DistributedVariables.JobToken)
            : throw new DistributedException(
                $"{DistributedVariables.JobToken} is not set: a multi-process run admits only ranks that share the job's token " +
                $"(at least {JobToken.MinimumLength} characters, e.g. openssl rand -hex 32); {hint}.");

        public TimeSpan? Seconds(string name)
        {
            if (Value(name) is not { } text) return null;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || !(s > 0) || s > 86400)
                throw new DistributedException($"{name}='{text}' is not a number of seconds from 0 to 86400.");
            return TimeSpan.FromSeconds(s);
        }
    }
}
