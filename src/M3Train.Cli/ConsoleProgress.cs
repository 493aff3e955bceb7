using System.Diagnostics;
using System.Globalization;
using System.Text;
using M3Train.Runtime;

namespace M3Train.Cli;

/// <summary>
/// How m3train shows <see cref="ProgressTask"/>s (steps, rate, ETA and a few metrics). On a terminal it is one status
/// line on stderr, cut to the terminal's width and redrawn in place, with every log line printed whole above it; when
/// stderr is redirected (CI, a file) the log lines pass through as they are and a plain status line is printed at most
/// every <see cref="PlainInterval"/>, so logs stay readable.
/// </summary>
/// <param name="output">Where everything is written (stderr).</param>
/// <param name="interactive">A terminal: redraw the status line in place.</param>
/// <param name="width">The terminal's width in columns, asked before each redraw (a window may be resized); null: <see cref="TerminalWidth"/>.</param>
public sealed class ConsoleProgress(TextWriter output, bool interactive, Func<int>? width = null) : IProgressObserver
{
    /// <summary>Clears the terminal line the cursor is on and returns to its start.</summary>
    const string ClearLine = "\r\u001b[2K";

    readonly TextWriter _output = output;
    readonly bool _interactive = interactive;
    readonly Func<int> _width = width ?? TerminalWidth;
    readonly object _gate = new();
    readonly Dictionary<ProgressTask, Shown> _shown = new(ReferenceEqualityComparer.Instance);
    readonly StringBuilder _pending = new();
    ProgressTask? _active;
    bool _drawn;
    long _started;

    public TimeSpan PlainInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Shows every task of this process on stderr, and routes stderr through a writer that prints each complete line of
    /// other output (log lines) above the status line. Colour must reach stderr as escape codes inside those lines:
    /// a colour set through <see cref="Console.ForegroundColor"/> goes to the terminal at once, around the line.
    /// </summary>
    public static ConsoleProgress Install()
    {
        bool interactive = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("CI") is null or "" or "false";
        var progress = new ConsoleProgress(Console.Error, interactive);
        Console.SetError(progress.Writer());
        ProgressTask.Observer = progress;
        return progress;
    }

    /// <summary>Draws a status line redrawn in place (a terminal), rather than plain lines.</summary>
    public bool Interactive => _interactive;

    /// <summary>A writer for other output (log lines) that keeps it apart from the status line.</summary>
    public TextWriter Writer() => new GuardedWriter(this);

    /// <summary>The terminal's width: the console window's when it has one, else <c>$COLUMNS</c>, else 80.</summary>
    public static int TerminalWidth()
    {
        try
        {
            if (Console.WindowWidth > 0) return Console.WindowWidth;
        }
        catch (Exception e) when (e is IOException or PlatformNotSupportedException or InvalidOperationException)
        {
            // No console window (output redirected, no terminal): fall through to the environment's word.
        }
        return int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out int columns) && columns > 0 ? columns : 80;
    }

    public void Started(ProgressTask task)
    {
        lock (_gate)
        {
            _shown[task] = new Shown(_started++);
            _active = task;
        }
    }

    public void Updated(ProgressTask task)
    {
        lock (_gate)
        {
            if (!_shown.TryGetValue(task, out var shown)) _shown[task] = shown = new Shown(_started++);
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

    /// <summary>
    /// A task ended. The last one stays on screen as a line of its own; one that ran inside another (an evaluation
    /// inside a training run) is cleared, and the one it ran in is drawn again.
    /// </summary>
    public void Ended(ProgressTask task)
    {
        lock (_gate)
        {
            _shown.Remove(task);
            if (_active != task) return;
            _active = _shown.OrderBy(s => s.Value.Order).Select(s => s.Key).LastOrDefault();
            if (!_interactive || !_drawn) return;
            if (_active is null)
            {
                _output.WriteLine();
                _drawn = false;
            }
            else Draw(_active);
        }
    }

    /// <summary>The whole status line: label, done/total and share, rate, ETA, the task's alarm in brackets, its metrics.</summary>
    public string Line(ProgressTask task) => Line(task, int.MaxValue);

    /// <summary>
    /// The status line in at most <paramref name="columns"/> characters: the count, rate and ETA always (cut at the end
    /// if even they do not fit), then the alarm, then as many of the task's metrics, in their order, as fit whole.
    /// </summary>
    public string Line(ProgressTask task, int columns)
    {
        lock (_gate)
        {
            var shown = _shown.GetValueOrDefault(task) ?? new Shown(0);
            double seconds = shown.Clock.Elapsed.TotalSeconds;
            long progressed = task.Done - Math.Max(shown.Start, 0);
            double rate = seconds > 0 ? progressed / seconds : 0;
            string eta = rate > 0 && task.Total > 0 ? FormatTime(TimeSpan.FromSeconds((task.Total - task.Done) / rate)) : "?";
            string total = task.Total > 0 ? $"/{task.Total}" : "";
            string pct = task.Total > 0 ? $" {100.0 * task.Done / task.Total,3:F0}%" : "";
            var line = new StringBuilder($"{task.Label} {task.Done}{total}{pct}  {(rate < 100 ? rate.ToString("F2", CultureInfo.InvariantCulture) : rate.ToString("F0", CultureInfo.InvariantCulture))} {task.Unit}/s  ETA {eta}");
            if (line.Length > columns) return line.ToString(0, columns);
            var parts = new List<string>();
            if (task.Alarm is not null) parts.Add($"[{task.Alarm}]");
            parts.AddRange(task.Metrics.Select(m => $"{m.Name} {Format(m.Value)}"));
            foreach (string part in parts)
            {
                if (line.Length + 2 + part.Length > columns) break;
                line.Append("  ").Append(part);
            }
            return line.ToString();
        }
    }

    /// <summary>
    /// Redraws the status line one column short of the terminal's width: a line that fills the last column leaves the
    /// cursor pending at its end, and some terminals then wrap the next carriage return onto a new line.
    /// </summary>
    void Draw(ProgressTask task)
    {
        _output.Write(ClearLine + Line(task, Math.Max(20, _width() - 1)));
        _output.Flush();
        _drawn = true;
    }

    /// <summary>
    /// Takes other output: complete lines are printed at once, above the status line on a terminal (the status line is
    /// cleared, the lines written, the status line drawn again); a line's start is held until its end comes.
    /// </summary>
    void WriteOther(string? value)
    {
        if (string.IsNullOrEmpty(value)) return;
        lock (_gate)
        {
            _pending.Append(value);
            int end = LastLineEnd(_pending);
            if (end < 0) return;
            string lines = _pending.ToString(0, end + 1);
            _pending.Remove(0, end + 1);
            bool redraw = _interactive && _drawn && _active is not null;
            if (redraw) _output.Write(ClearLine);
            _output.Write(lines);
            if (redraw) Draw(_active!);
            else _output.Flush();
        }
    }

    /// <summary>Writes out a held line start that no status line is in the way of (a prompt, the end of the program).</summary>
    void FlushOther()
    {
        lock (_gate)
        {
            if (_pending.Length > 0 && !(_interactive && _drawn && _active is not null))
            {
                _output.Write(_pending.ToString());
                _pending.Clear();
            }
            _output.Flush();
        }
    }

    static int LastLineEnd(StringBuilder text)
    {
        for (int i = text.Length - 1; i >= 0; i--)
            if (text[i] == '\n') return i;
        return -1;
    }

    static string Format(double v) =>
        v == 0 ? "0" : Math.Abs(v) >= 1e4 || Math.Abs(v) < 1e-3 ? v.ToString("0.###e0", CultureInfo.InvariantCulture) : v.ToString("G4", CultureInfo.InvariantCulture);

    static string FormatTime(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";

    /// <summary>How far a task had got when last shown; <paramref name="order"/> counts the tasks started before it.</summary>
    sealed class Shown(long order)
    {
        public long Order { get; } = order;
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public long Start { get; set; } = -1;
        public TimeSpan? LastDraw { get; set; }
    }

    /// <summary>
    /// stderr as other code sees it. Serilog's console sink writes one event in many pieces (a colour code, a word, a
    /// colour code, ...); each piece goes to <see cref="WriteOther"/>, which prints them together once the line is whole.
    /// </summary>
    sealed class GuardedWriter(ConsoleProgress progress) : TextWriter
    {
        public override Encoding Encoding => progress._output.Encoding;
        public override void Write(char value) => progress.WriteOther(value.ToString());
        public override void Write(string? value) => progress.WriteOther(value);
        public override void Write(char[] buffer, int index, int count) => progress.WriteOther(new string(buffer, index, count));
        public override void WriteLine(string? value) => progress.WriteOther(value + new string(CoreNewLine));
        public override void WriteLine() => progress.WriteOther(new string(CoreNewLine));
        public override void Flush() => progress.FlushOther();
    }
}
