using System.CommandLine;
using M3Train.Distributed;
using M3Train.Training;

namespace M3Train.Cli;

/// <summary>The options of the training verbs (finetune, pretrain), declared once, and how they become a run config.</summary>
public sealed class TrainingOptions
{
    public Option<FileInfo> Config { get; } = CommonOptions.Config();

    public Option<string[]> Set { get; } = CommonOptions.Set();

    public Option<string?> Resume { get; } = new("--resume")
    {
        Description = "Continue a run: 'latest' (the default when no value is given) or a checkpoint folder.",
        Arity = ArgumentArity.ZeroOrOne,
    };

    public Option<string?> Device { get; } = new("--device")
    {
        Description = "Override train.device, and clear train.devices: one replica on cpu, cuda or cuda:N.",
    };

    public Option<string?> Devices { get; } = new("--devices")
    {
        Description = "Override train.devices: data parallelism, one process per device, comma-separated (cuda:0,cuda:1 or cpu,cpu), or 'cuda' for every visible GPU.",
    };

    public Option<int?> Threads { get; } = CommonOptions.Threads();

    public IEnumerable<Option> All => [Config, Set, Resume, Device, Devices, Threads];

    /// <summary>
    /// A training verb: <c>--config</c>, <c>--set</c>, <c>--resume</c>, <c>--device</c>, <c>--devices</c>, <c>--threads</c>, then the recipe.
    /// Exit code 130 when a signal stopped the run before its end (a checkpoint was saved), else 0.
    /// </summary>
    /// <remarks>
    /// Data parallelism is one process per device. A plain invocation whose config lists several devices runs its own
    /// command line again as that many ranks (<see cref="RankProcesses"/>, each rank's output in <c>OUTPUT/logs/rank-R.log</c>)
    /// and returns their exit code; a rank (started so, or by <c>m3train launch</c>, torchrun or srun) joins the job on its
    /// device, trains, and leaves the job when done or tells every rank its error.
    /// </remarks>
    /// <param name="load">Reads the config file with the <c>--set</c> overrides; null: <see cref="RunConfig.Load"/>.</param>
    public static Command CreateCommand(string name, string description, Func<RunConfig, TrainerOptions, TrainerResult> recipe,
        Func<string, IEnumerable<string>, RunConfig>? load = null)
    {
        var options = new TrainingOptions();
        var command = new Command(name, description);
        foreach (var option in options.All) command.Add(option);
        command.SetAction(parse =>
        {
            var (run, trainer) = options.Read(parse, name, load);
            var launch = LaunchEnvironment.FromProcess();
            int processes = RankDevices.ProcessesFor(run.Train);
            if (!launch.IsDistributed && processes > 1)
                return RankProcesses.Run(processes, RankProcesses.CommandLine(parse), Path.Combine(run.OutputDir, "logs"));
            using var job = DistributedContext.Start(launch, RankDevices.For(run.Train, launch));
            try
            {
                var result = recipe(run, trainer with { Distributed = job });
                job.Finish();
                return result.Stopped && result.Steps < result.TotalSteps && run.Train.StopAfter is null ? 130 : 0;
            }
            catch (Exception e)
            {
                job.Fail(e);
                throw;
            }
        });
        return command;
    }

    /// <summary>The run config and trainer options the command line asks for; <paramref name="load"/> reads the file (null: <see cref="RunConfig.Load"/>).</summary>
    public (RunConfig Config, TrainerOptions Options) Read(ParseResult parse, string recipe, Func<string, IEnumerable<string>, RunConfig>? load = null)
    {
        var run = (load ?? ((path, sets) => RunConfig.Load(path, sets)))(parse.GetValue(Config)!.FullName, Overrides(parse));
        string? resumeFrom = parse.GetResult(Resume) is null ? null : parse.GetValue(Resume) ?? "latest";
        return (run, new TrainerOptions { Resume = resumeFrom, Recipe = recipe });
    }

    /// <summary>
    /// The <c>--set</c> overrides, then those of the dedicated options. The command line wins over the file: a device
    /// named on it (<c>--device</c>, or <c>--set train.device=...</c> without <c>train.devices</c>) also clears the file's
    /// <c>train.devices</c>, which would otherwise take precedence over <c>train.device</c>.
    /// </summary>
    public List<string> Overrides(ParseResult parse)
    {
        var overrides = (parse.GetValue(Set) ?? []).ToList();
        string? device = parse.GetValue(Device), devices = parse.GetValue(Devices);
        if (device is not null && devices is not null)
            throw new M3TrainException($"--device {device} and --devices {devices}: give one (--device for one replica, --devices for several).");
        if (device is not null) overrides.Add($"train.device={device}");
        if (devices is not null) overrides.Add($"train.devices=[{devices}]");
        if (parse.GetValue(Threads) is int threads) overrides.Add($"train.threads={threads}");
        bool setsDevice = overrides.Any(o => Key(o) == "train.device"), setsDevices = overrides.Any(o => Key(o) == "train.devices");
        if (setsDevice && !setsDevices) overrides.Add("train.devices=[]");
        return overrides;
    }

    static string Key(string set) => set.Split('=', 2)[0].Trim();
}
