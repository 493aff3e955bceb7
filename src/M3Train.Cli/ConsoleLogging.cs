using Serilog;
using Serilog.Events;
using Serilog.Sinks.SystemConsole.Themes;

namespace M3Train.Cli;

/// <summary>
/// m3train's logging: human lines on stderr (stdout stays free for a verb's data output), above the progress line
/// (<see cref="ConsoleProgress"/>). A training run adds its own <c>log.jsonl</c> beside this (<see cref="Runtime.RunLog"/>).
/// </summary>
public static class ConsoleLogging
{
    public static void Configure(bool verbose = false)
    {
        var progress = ConsoleProgress.Install();
        // On a terminal, colours as escape codes written with each line (the progress line is redrawn between lines);
        // elsewhere, plain text.
        var theme = progress.Interactive ? AnsiConsoleTheme.Literate : ConsoleTheme.None;
        Log.Logger = new LoggerConfiguration()
            .MinimumLevel.Is(verbose ? LogEventLevel.Debug : LogEventLevel.Information)
            .WriteTo.Console(
                outputTemplate: "{Timestamp:HH:mm:ss} {Level:u3} {Message:lj}{NewLine}{Exception}",
                standardErrorFromLevel: LogEventLevel.Verbose,
                theme: theme,
                formatProvider: System.Globalization.CultureInfo.InvariantCulture)
            .CreateLogger();
    }

    public static void Close() => Log.CloseAndFlush();
}
