namespace M3Train.Distributed;

/// <summary>What started this process, as read from its environment by <see cref="LaunchEnvironment"/>.</summary>
public enum Launcher
{
    /// <summary>No launcher: one process, world size 1.</summary>
    None,
    /// <summary><c>m3train launch</c> (the <c>M3_*</c> variables).</summary>
    M3Launch,
    /// <summary>torchrun (<c>RANK</c>, <c>WORLD_SIZE</c>, <c>LOCAL_RANK</c>, <c>MASTER_ADDR</c>, <c>MASTER_PORT</c>).</summary>
    Torchrun,
    /// <summary>A task of a SLURM <c>srun</c> step (<c>SLURM_PROCID</c>, <c>SLURM_NTASKS</c>, <c>SLURM_LOCALID</c>).</summary>
    Slurm,
}
