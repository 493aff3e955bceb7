using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace M3Train.Runtime;

/// <summary>
/// Serilog set-up for every verb: human lines on stderr (stdout stays free for a verb's data output),
/// and, for a run with an output folder, one JSON object per event in <c>log.jsonl</c> there.
/// </summary>
public static class RunLogging
{
    public static void Configure(string? runDirectory = null, bool verbose = false)
    {
        ProgressDisplay.InstallConsoleGuard();
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(verbose ? LogEventLevel.Debug : LogEventLevel.Information)
            .WriteTo.Console(
                outputTemplate: "{Timestamp:HH:mm:ss} {Level:u3} {Message:lj}{NewLine}{Exception}",
                standardErrorFromLevel: LogEventLevel.Verbose,
                formatProvider: System.Globalization.CultureInfo.InvariantCulture);
        if (runDirectory != null)
        {
            Directory.CreateDirectory(runDirectory);
            config = config.WriteTo.File(new CompactJsonFormatter(), Path.Combine(runDirectory, "log.jsonl"), shared: true);
        }
        var previous = Log.Logger;
        Log.Logger = config.CreateLogger();
        (previous as IDisposable)?.Dispose();
    }

    public static void Close() => Log.CloseAndFlush();
}
