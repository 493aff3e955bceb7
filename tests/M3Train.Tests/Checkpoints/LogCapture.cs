using Serilog;
using Serilog.Core;
using Serilog.Events;
using Xunit;

namespace M3Train.Tests.Checkpoints;

/// <summary>Routes Serilog's static logger into a list for the duration of a test; tests using it run alone (the logger is global).</summary>
internal sealed class LogCapture : ILogEventSink, IDisposable
{
    readonly ILogger _previous = Log.Logger;
    readonly List<LogEvent> _events = [];

    public LogCapture()
    {
        Log.Logger = new LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(this).CreateLogger();
    }

    public IReadOnlyList<string> Warnings
    {
        get
        {
            lock (_events) return _events.Where(e => e.Level == LogEventLevel.Warning).Select(e => e.RenderMessage()).ToList();
        }
    }

    /// <summary>Every event's rendered message, in order.</summary>
    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_events) return _events.Select(e => e.RenderMessage()).ToList();
        }
    }

    public void Emit(LogEvent logEvent)
    {
        lock (_events) _events.Add(logEvent);
    }

    public void Dispose() => Log.Logger = _previous;
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerilogCaptureCollection
{
    public const string Name = "Serilog capture";
}
