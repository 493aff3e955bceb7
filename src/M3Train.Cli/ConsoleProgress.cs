using System.Diagnostics;
using System.Globalization;
using System.Text;
using M3Train.Runtime;

namespace M3Train.Cli;

/// <summary>
/// How m3train shows <see cref="ProgressTask"/>s (steps, rate, ETA and a few metrics). On a terminal it is one status
/// line on stderr, redrawn in place, that log lines pass above; when stderr is redirected (CI, a file) it prints a plain
/// line at most every <see cref="PlainInterval"/>, so logs stay readable.
/// </summary>
public sealed class ConsoleProgress(TextWriter output, bool interactive) : IProgressObserver
{
    readonly TextWriter _output = output;
    readonly bool _interactive = interactive;
    readonly object _gate = new();
    readonly Dictionary<ProgressTask, Shown> _shown = new(ReferenceEqualityComparer.Instance);
    ProgressTask? _active;

    public TimeSpan PlainInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Shows every task of this process on stderr, and routes stderr through a writer that lifts the status line out of
    /// the way of other output (log lines).
    /// </summary>
    public static void Install()
    {
        bool interactive = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("CI") is null or "" or "false";
        var progress = new ConsoleProgress(Console.Error, interactive);
        Console.SetError(new GuardedWriter(progress));
        ProgressTask.Observer = progress;
    }

    public void Started(ProgressTask task)
    {
        lock (_gate)
        {
            _shown[task] = new Shown();
            _active = task;
        }
    }

    public void Updated(ProgressTask task)
    {
        lock (_gate)
        {
            if (!_shown.TryGetValue(task, out var shown)) _shown[task] = shown = new Shown();
            _active = task;
            if (shown.Start < 0) shown.Start = task.Done;
            var now = shown.Clock.Elapsed;
            var interval = _interactive ? TimeSpan.FromMilliseconds(100) : PlainInterval;
            if (task.Done < task.Total && shown.LastDraw is { } last && now - last < interval) return;
            shown.LastDraw = now;
            if (_interactive) Draw(task);
            else _output.WriteLine(Line(task));
        }
    }

    public void Ended(ProgressTask task)
    {
        lock (_gate)
        {
            if (_interactive && _shown.ContainsKey(task)) _output.WriteLine();
            _shown.Remove(task);
            if (_active == task) _active = null;
        }
    }

    /// <summary>The status line: label, done/total and share, rate, ETA, the task's metrics and its alarm in brackets.</summary>
    public string Line(ProgressTask task)
    {
        lock (_gate)
        {
            var shown = _shown.GetValueOrDefault(task) ?? new Shown();
            double seconds = shown.Clock.Elapsed.TotalSeconds;
            long progressed = task.Done - Math.Max(shown.Start, 0);
            double rate = seconds > 0 ? progressed / seconds : 0;
            string eta = rate > 0 && task.Total > 0 ? FormatTime(TimeSpan.FromSeconds((task.Total - task.Done) / rate)) : "?";
            string total = task.Total > 0 ? $"/{task.Total}" : "";
            string pct = task.Total > 0 ? $" {100.0 * task.Done / task.Total,3:F0}%" : "";
            string extra = string.Join("  ", task.Metrics.Select(m => $"{m.Name} {Format(m.Value)}")) + (task.Alarm is null ? "" : $"  [{task.Alarm}]");
            return $"{task.Label} {task.Done}{total}{pct}  {rate:F2} {task.Unit}/s  ETA {eta}  {extra}".TrimEnd();
        }
    }

    void Draw(ProgressTask task)
    {
        _output.Write("\r\u001b[2K" + Line(task));
        _output.Flush();
    }

    static string Format(double v) =>
        v == 0 ? "0" : Math.Abs(v) >= 1e4 || Math.Abs(v) < 1e-3 ? v.ToString("0.###e0", CultureInfo.InvariantCulture) : v.ToString("G4", CultureInfo.InvariantCulture);

    static string FormatTime(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";

    /// <summary>How far a task had got when last shown.</summary>
    sealed class Shown
    {
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public long Start { get; set; } = -1;
        public TimeSpan? LastDraw { get; set; }
    }

    /// <summary>stderr, with the status line cleared before other output and drawn again after each complete line of it.</summary>
    sealed class GuardedWriter(ConsoleProgress progress) : TextWriter
    {
        public override Encoding Encoding => progress._output.Encoding;

        public override void Write(char value) => Write(value.ToString());

        public override void Write(string? value)
        {
            lock (progress._gate)
            {
                bool redraw = progress._interactive && progress._active is not null;
                if (redraw) progress._output.Write("\r\u001b[2K");
                progress._output.Write(value);
                if (redraw && value != null && value.EndsWith('\n')) progress.Draw(progress._active!);
            }
        }

        public override void WriteLine(string? value) => Write(value + Environment.NewLine);
        public override void Flush() => progress._output.Flush();
    }
}
