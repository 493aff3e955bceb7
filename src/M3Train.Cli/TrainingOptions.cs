using System.CommandLine;
using M3Train.Distributed;
using M3Train.Training;

namespace M3Train.Cli;

/// <summary>The options of the training verbs (finetune, pretrain) and how they become a run config.</summary>
public static class TrainingOptions
{
    public static Option<string?> Resume() => new("--resume")
    {
        Description = "Continue a run: 'latest' (the default when no value is given) or a checkpoint folder.",
        Arity = ArgumentArity.ZeroOrOne,
    };

    public static Option<string?> DeviceOverride() => new("--device")
    {
        Description = "Override train.device: cpu, cuda or cuda:N.",
    };

    public static Option<string?> Devices() => new("--devices")
    {
        Description = "Override train.devices: data parallelism, one process per device, comma-separated (cuda:0,cuda:1 or cpu,cpu), or 'cuda' for every visible GPU.",
    };

    /// <summary>
    /// A training verb: <c>--config</c>, <c>--set</c>, <c>--resume</c>, <c>--device</c>, <c>--devices</c>, then the recipe.
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
        var config = CommonOptions.Config();
        var set = CommonOptions.Set();
        var resume = Resume();
        var device = DeviceOverride();
        var devices = Devices();
        var command = new Command(name, description) { config, set, resume, device, devices };
        command.SetAction(parse =>
        {
            var (run, options) = Read(parse, config, set, resume, device, devices, name, load);
            var launch = LaunchEnvironment.FromProcess();
            int processes = RankDevices.ProcessesFor(run.Train);
            if (!launch.IsDistributed && processes > 1)
                return RankProcesses.Run(processes, RankProcesses.CommandLine(parse), Path.Combine(run.OutputDir, "logs"));
            using var job = DistributedContext.Start(launch, RankDevices.For(run.Train, launch));
            try
            {
                var result = recipe(run, options with { Distributed = job });
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

    public static (RunConfig Config, TrainerOptions Options) Read(ParseResult parse, Option<FileInfo> config, Option<string[]> set,
        Option<string?> resume, Option<string?> device, Option<string?> devices, string recipe,
        Func<string, IEnumerable<string>, RunConfig>? load = null)
    {
        var overrides = (parse.GetValue(set) ?? []).ToList();
        if (parse.GetValue(device) is { } d) overrides.Add($"train.device={d}");
        if (parse.GetValue(devices) is { } ds) overrides.Add($"train.devices=[{ds}]");
        var run = (load ?? ((path, sets) => RunConfig.Load(path, sets)))(parse.GetValue(config)!.FullName, overrides);
        string? resumeFrom = parse.GetResult(resume) is null ? null : parse.GetValue(resume) ?? "latest";
        return (run, new TrainerOptions { Resume = resumeFrom, Recipe = recipe });
    }
}
