using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace M3Train.Runtime;

/// <summary>
/// Progress of long work (steps, rate, ETA and a few metrics). On a terminal it is one status line on
/// stderr, redrawn in place, that log lines pass above; when stderr is redirected (CI, a file) it
/// prints a plain line at most every <see cref="PlainInterval"/>, so logs stay readable.
/// </summary>
public sealed class ProgressDisplay : IDisposable
{
    static readonly object Gate = new();
    static GuardedWriter? _guard;
    static ProgressDisplay? _active;

    readonly string _label;
    readonly long _total;
    readonly string _unit;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly bool _interactive;
    long _start = -1;
    long _done;
    string _extra = "";
    TimeSpan? _lastDraw;

    public TimeSpan PlainInterval { get; init; } = TimeSpan.FromSeconds(10);

    public ProgressDisplay(string label, long total, string unit = "steps", bool? interactive = null)
    {
        _label = label;
        _total = total;
        _unit = unit;
        _interactive = interactive ?? (!Console.IsErrorRedirected && Environment.GetEnvironmentVariable("CI") is null or "" or "false");
        lock (Gate) _active = this;
    }

    /// <summary>Records that <paramref name="done"/> units are finished; <paramref name="metrics"/> are shown as name value, an <paramref name="alarm"/> in brackets.</summary>
    public void Update(long done, IEnumerable<(string Name, double Value)>? metrics = null, string? alarm = null)
    {
        lock (Gate)
        {
            if (_start < 0) _start = done;
            _done = done;
            if (metrics != null)
                _extra = string.Join("  ", metrics.Select(m => $"{m.Name} {Format(m.Value)}")) + (alarm is null ? "" : $"  [{alarm}]");
            var now = _clock.Elapsed;
            var interval = _interactive ? TimeSpan.FromMilliseconds(100) : PlainInterval;
            if (done < _total && _lastDraw is { } last && now - last < interval) return;
            _lastDraw = now;
            if (_interactive) Draw();
            else (_guard?.Inner ?? Console.Error).WriteLine(Line());
        }
    }

    public string Line()
    {
        double seconds = _clock.Elapsed.TotalSeconds;
        long progressed = _done - Math.Max(_start, 0);
        double rate = seconds > 0 ? progressed / seconds : 0;
        string eta = rate > 0 && _total > 0 ? FormatTime(TimeSpan.FromSeconds((_total - _done) / rate)) : "?";
        string total = _total > 0 ? $"/{_total}" : "";
        string pct = _total > 0 ? $" {100.0 * _done / _total,3:F0}%" : "";
        return $"{_label} {_done}{total}{pct}  {rate:F2} {_unit}/s  ETA {eta}  {_extra}".TrimEnd();
    }

    void Draw()
    {
        var w = _guard?.Inner ?? Console.Error;
        w.Write("\r\u001b[2K" + Line());
        w.Flush();
    }

    public void Dispose()
    {
        lock (Gate)
        {
            if (_interactive) (_guard?.Inner ?? Console.Error).WriteLine();
            if (_active == this) _active = null;
        }
    }

    static string Format(double v) =>
        v == 0 ? "0" : Math.Abs(v) >= 1e4 || Math.Abs(v) < 1e-3 ? v.ToString("0.###e0", CultureInfo.InvariantCulture) : v.ToString("G4", CultureInfo.InvariantCulture);

    static string FormatTime(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";

    /// <summary>Routes stderr through a writer that lifts the status line out of the way of other output.</summary>
    public static void InstallConsoleGuard()
    {
        lock (Gate)
        {
            if (_guard != null) return;
            _guard = new GuardedWriter(Console.Error);
            Console.SetError(_guard);
        }
    }

    sealed class GuardedWriter(TextWriter inner) : TextWriter
    {
        public TextWriter Inner { get; } = inner;
        public override Encoding Encoding => Inner.Encoding;

        public override void Write(char value) => Write(value.ToString());

        public override void Write(string? value)
        {
            lock (Gate)
            {
                bool redraw = _active is { _interactive: true };
                if (redraw) Inner.Write("\r\u001b[2K");
                Inner.Write(value);
                if (redraw && value != null && value.EndsWith('\n')) _active!.Draw();
            }
        }

        public override void WriteLine(string? value) => Write(value + Environment.NewLine);
        public override void Flush() => Inner.Flush();
    }
}
