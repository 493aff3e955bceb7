namespace M3Train.Distributed;

/// <summary>What <c>m3train launch</c> starts on this machine: ranks NodeRank·N … NodeRank·N + N − 1 of Nodes·N.</summary>
public sealed record LaunchOptions
{
    public required int ProcessesPerNode { get; init; }
    public int Nodes { get; init; } = 1;
    public int NodeRank { get; init; }
    public string MasterAddress { get; init; } = "127.0.0.1";
    public required int MasterPort { get; init; }
    public required JobToken Token { get; init; }

    /// <summary>Where each rank's output goes, as <c>rank-R.log</c>.</summary>
    public required string LogDirectory { get; init; }

    /// <summary>How long ranks get to end after SIGTERM (one failed, or the launcher was signalled) before SIGKILL.</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(30);

    public int WorldSize => Nodes * ProcessesPerNode;
}
