using System.CommandLine;
using System.Globalization;
using M3Train.Distributed;
using Serilog;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train dist-check</c>: run under <c>m3train launch</c>, torchrun or srun, checks the rendezvous and every
/// collective on inputs with known results, and reports correctness and speed per collective as JSON (rank 0).
/// See <see cref="CollectiveCheck"/>.
/// </summary>
public static class DistCheckCommand
{
    static readonly Option<string> DeviceOption = new("--device")
    {
        Description = "cpu (the TCP ring), or cuda / cuda:N (NCCL, also for a single process); plain cuda means cuda:LOCAL_RANK.",
        DefaultValueFactory = _ => "cpu",
    };

    static readonly Option<string> SizesOption = new("--sizes")
    {
        Description = "Bytes of each rank's tensor, comma-separated, with K, M or G (multiples of 4): e.g. 4K,256K,4M,64M.",
        DefaultValueFactory = _ => "4K,256K,4M",
    };

    static readonly Option<int> IterationsOption = new("--iterations") { Description = "Timed repetitions per collective and size.", DefaultValueFactory = _ => 5 };
    static readonly Option<int> WarmupOption = new("--warmup") { Description = "Untimed repetitions first.", DefaultValueFactory = _ => 1 };
    static readonly Option<double> SoakOption = new("--soak") { Description = "Then keep all-reducing the largest size for this many seconds, checking every result.", DefaultValueFactory = _ => 0 };
    static readonly Option<FileInfo?> OutputOption = new("--output") { Description = "Also write rank 0's JSON report to this file." };

    public static Command Create()
    {
        var command = new Command("dist-check", "Check the rendezvous and the collectives of a multi-process job (run it under m3train launch, torchrun or srun); prints a JSON report.")
        {
            DeviceOption, SizesOption, IterationsOption, WarmupOption, SoakOption, OutputOption,
        };
        IterationsOption.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--iterations must be at least 1."); });
        WarmupOption.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) r.AddError("--warmup cannot be negative."); });
        SoakOption.Validators.Add(r => { if (r.GetValueOrDefault<double>() is < 0 or > 86400) r.AddError("--soak is 0 to 86400 seconds."); });
        command.SetAction(parseResult => Run(
            parseResult.GetValue(DeviceOption)!,
            new CollectiveCheckOptions
            {
                Sizes = ParseSizes(parseResult.GetValue(SizesOption)!),
                Iterations = parseResult.GetValue(IterationsOption),
                Warmup = parseResult.GetValue(WarmupOption),
                Soak = TimeSpan.FromSeconds(parseResult.GetValue(SoakOption)),
            },
            parseResult.GetValue(OutputOption)));
        return command;
    }

    public static IReadOnlyList<long> ParseSizes(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(size =>
    {
        long unit = char.ToUpperInvariant(size[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1 };
        string number = unit == 1 ? size : size[..^1];
        if (!long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out long count) || count * unit < 4 || count * unit % 4 != 0)
            throw new M3TrainException($"--sizes: '{size}' is not a size in bytes that is a positive multiple of 4 (e.g. 4K, 1M, 4096).");
        return count * unit;
    }).ToList() is { Count: > 0 } sizes ? sizes : throw new M3TrainException("--sizes names no size.");

    static int Run(string device, CollectiveCheckOptions options, FileInfo? output)
    {
        var launch = LaunchEnvironment.FromProcess();
        using var context = DistributedContext.Start(launch, DistributedContext.DeviceFor(device, launch), ncclWhenAlone: true);
        System.Text.Json.Nodes.JsonObject? report;
        try
        {
            report = CollectiveCheck.Run(context, options);
            context.Finish();
        }
        catch (Exception e)
        {
            context.Fail(e);
            throw;
        }
        if (report is null)
        {
            Log.Information("dist-check: rank {Rank} done; rank 0 reports", context.Rank);
            return 0;
        }
        string json = CollectiveCheck.ToJson(report);
        Console.Out.WriteLine(json);
        if (output is not null)
        {
            if (output.DirectoryName is { } dir) Directory.CreateDirectory(dir);
            File.WriteAllText(output.FullName, json + "\n");
        }
        Log.Information("dist-check, {World} rank(s), {Backend}:\n{Summary}", context.WorldSize, context.Collectives.Backend, CollectiveCheck.Summary(report));
        if (report["ok"]!.GetValue<bool>()) return 0;
        Console.Error.WriteLine("error: some collectives gave wrong or rank-dependent results (see \"correct\", \"failed_ranks\" and \"identical_across_ranks\" in the report).");
        return 1;
    }
}
