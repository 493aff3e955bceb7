using System.CommandLine;
using M3Train.Training;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train probe-batch</c>: the largest batch per length bin that fits in memory, written into a config.</summary>
public static class ProbeBatchCommand
{
    static readonly Option<double> MemoryFraction = new("--memory-fraction")
    {
        Description = "Share of the memory a training step may take: of the GPU's memory on CUDA, of the available host memory on CPU.",
        DefaultValueFactory = _ => 0.9,
    };

    static readonly Option<FileInfo> Output = PathOptions.Output("--output", "Where to write the probed config (default: beside the config, as NAME.probed.yaml).", required: false);

    static readonly Option<string?> Device = new("--device")
    {
        Description = "Device to probe: cpu, cuda or cuda:N (default: the config's train.devices[0] or train.device).",
    };

    static readonly Option<int?> MaxBatch = new("--max-batch")
    {
        Description = $"Largest batch (or sub-batch) considered (default {BatchSizeProbe.CpuMaxBatch} on CPU, {BatchSizeProbe.CudaMaxBatch} on CUDA).",
    };

    /// <summary>Internal: the child process of a CUDA probe runs one trial and prints its result as JSON.</summary>
    static readonly Option<string?> Trial = new("--trial") { Hidden = true };

    public static Command Create()
    {
        var config = CommonOptions.Config();
        var set = CommonOptions.Set();
        var threads = CommonOptions.Threads();
        var command = new Command("probe-batch",
            "Find the largest per-replica batch of each length bin (or GradCache sub-batch, with train.sub_batch_size set) that fits " +
            "in memory, by trial training steps at the bin's longest lengths, and write it into a config for finetune/pretrain.")
        {
            config, set, MemoryFraction, Output, Device, MaxBatch, threads, Trial,
        };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(config)!.FullName;
            if (parse.GetValue(Output) is { } output) VerbOutput.Check("--output", output, ("--config", parse.GetValue(config)));
            var overrides = (parse.GetValue(set) ?? []).ToList();
            if (parse.GetValue(threads) is int n) overrides.Add($"train.threads={n}");
            var run = RunConfig.Load(path, overrides);
            if (parse.GetValue(Trial) is { } trial)
            {
                Console.WriteLine(BatchSizeProbe.RunTrial(run, ProbeTrial.FromJson(trial)).ToJson());
                return 0;
            }
            var self = RankProcesses.Self();
            var report = BatchSizeProbe.Run(run, new BatchProbeOptions
            {
                OutputPath = parse.GetValue(Output)?.FullName ?? BatchSizeProbe.DefaultOutputPath(path),
                MemoryFraction = parse.GetValue(MemoryFraction),
                Device = parse.GetValue(Device),
                MaxBatch = parse.GetValue(MaxBatch),
                TrialRunner = new ProbeTrialProcess([self.Program, .. self.Prefix, "probe-batch"]),
            });
            Console.WriteLine($"{(report.SubBatches ? "GradCache sub-batch" : "Per-replica batch")} per length bin on {report.Device}, within {report.Limit}:");
            Console.Write(report.FormatTable());
            Console.WriteLine($"Written to {report.OutputPath}: m3train finetune --config {report.OutputPath}");
            return 0;
        });
        return command;
    }
}
