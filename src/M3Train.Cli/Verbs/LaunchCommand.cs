using System.CommandLine;
using M3Train.Distributed;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P] -- VERB ARGS...</c>:
/// runs <c>m3train VERB ARGS...</c> as N ranks on this machine, like torchrun. See <see cref="RankLauncher"/>.
/// </summary>
public static class LaunchCommand
{
    public const int DefaultMultiNodePort = 29500;

    static readonly Option<int> ProcessesOption = new("--nproc-per-node") { Description = "Ranks on this machine (one per GPU).", Required = true };
    static readonly Option<int> NodesOption = new("--nnodes") { Description = "Machines in the job.", DefaultValueFactory = _ => 1 };
    static readonly Option<int> NodeRankOption = new("--node-rank") { Description = "This machine's index, 0 to nnodes-1 (node 0 hosts the rendezvous).", DefaultValueFactory = _ => 0 };

    static readonly Option<string?> MasterAddressOption = new("--master-addr")
    {
        Description = "Node 0's address, where rank 0 listens (default 127.0.0.1 on one node; required on several).",
    };

    static readonly Option<int?> MasterPortOption = new("--master-port")
    {
        Description = $"The rendezvous port on node 0 (default: a free port on one node, {DefaultMultiNodePort} on several).",
    };

    static readonly Option<string?> LogDirectoryOption = new("--log-dir") { Description = "Folder for each rank's output, rank-R.log (default runs/launch/<time>)." };
    static readonly Option<double> GraceOption = new("--grace") { Description = "Seconds ranks get to end after SIGTERM before SIGKILL.", DefaultValueFactory = _ => 30 };

    static readonly Argument<string[]> CommandArgument = new("command")
    {
        Description = "The m3train verb and its arguments, after --: e.g. -- finetune --config run.yaml",
        Arity = ArgumentArity.OneOrMore,
    };

    public static Command Create()
    {
        var command = new Command("launch", "Run an m3train verb as several ranks (processes) on this machine, one per GPU, like torchrun; M3_JOB_TOKEN must be set for several machines.")
        {
            ProcessesOption, NodesOption, NodeRankOption, MasterAddressOption, MasterPortOption, LogDirectoryOption, GraceOption, CommandArgument,
        };
        ProcessesOption.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--nproc-per-node must be at least 1."); });
        NodesOption.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--nnodes must be at least 1."); });
        MasterPortOption.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1 or > 65535) r.AddError("--master-port must be 1 to 65535."); });
        GraceOption.Validators.Add(r => { if (r.GetValueOrDefault<double>() is < 0 or > 3600) r.AddError("--grace is 0 to 3600 seconds."); });
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ProcessesOption),
            parseResult.GetValue(NodesOption),
            parseResult.GetValue(NodeRankOption),
            parseResult.GetValue(MasterAddressOption),
            parseResult.GetValue(MasterPortOption),
            parseResult.GetValue(LogDirectoryOption),
            parseResult.GetValue(GraceOption),
            parseResult.GetValue(CommandArgument)!));
        return command;
    }

    static int Run(int processes, int nodes, int nodeRank, string? masterAddress, int? masterPort, string? logDirectory, double grace, string[] verb)
    {
        if (nodeRank < 0 || nodeRank >= nodes)
            throw new M3TrainException($"--node-rank {nodeRank} is not one of the {nodes} nodes (0 to {nodes - 1}).");
        if (verb[0] == "launch")
            throw new M3TrainException("launch cannot launch itself: give the verb each rank runs, e.g. -- finetune --config run.yaml");
        if (nodes > 1 && masterAddress is null)
            throw new M3TrainException("--master-addr is required with --nnodes > 1: node 0's address, where rank 0 hosts the rendezvous.");
        string? tokenText = Environment.GetEnvironmentVariable(DistributedVariables.JobToken);
        if (nodes > 1 && string.IsNullOrWhiteSpace(tokenText))
            throw new M3TrainException(
                $"{DistributedVariables.JobToken} must be set, to the same value on every node, for a job on several machines: " +
                "export M3_JOB_TOKEN=$(openssl rand -hex 32) and pass it to each node's launch.");
        var options = new LaunchOptions
        {
            ProcessesPerNode = processes, Nodes = nodes, NodeRank = nodeRank,
            MasterAddress = masterAddress ?? "127.0.0.1",
            MasterPort = masterPort ?? (nodes > 1 ? DefaultMultiNodePort : RankProcesses.FreePort()),
            Token = string.IsNullOrWhiteSpace(tokenText) ? JobToken.Generate() : JobToken.Parse(tokenText, DistributedVariables.JobToken),
            LogDirectory = logDirectory ?? Path.Combine("runs", "launch", DateTime.Now.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture)),
            Grace = TimeSpan.FromSeconds(grace),
        };
        var (program, prefix) = RankProcesses.Self();
        return RankLauncher.Run(options, program, [.. prefix, .. verb], Console.Out, Console.Error);
    }
}
