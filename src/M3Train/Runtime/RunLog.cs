using Serilog;
using Serilog.Formatting.Compact;

namespace M3Train.Runtime;

/// <summary>
/// A run folder's own log: while it is open, every event of Serilog's process-wide logger is also written to
/// <c>log.jsonl</c> there (or another file name: each rank of a multi-process run has its own), one JSON object per line, beside whatever sinks the host program set up (m3train: human
/// lines on stderr). Disposing it puts the host's logger back.
/// </summary>
public sealed class RunLog : IDisposable
{
    readonly ILogger _host;
    readonly Serilog.Core.Logger _logger;

    public RunLog(string runDirectory, string fileName = "log.jsonl")
    {
        Directory.CreateDirectory(runDirectory);
        _host = Log.Logger;
        _logger = new LoggerConfiguration()
            .MinimumLevel.Verbose()
            .WriteTo.Logger(_host)
            .WriteTo.File(new CompactJsonFormatter(), Path.Combine(runDirectory, fileName),
                restrictedToMinimumLevel: Serilog.Events.LogEventLevel.Information, shared: true)
            .CreateLogger();
        Log.Logger = _logger;
    }

    public void Dispose()
    {
        // Another run may have attached its own log meanwhile (tests run trainers one after another in one process);
        // only the logger this run set is taken back.
        if (ReferenceEquals(Log.Logger, _logger)) Log.Logger = _host;
        _logger.Dispose();
    }
}
