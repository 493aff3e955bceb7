using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace M3Train.Tests.Distributed;

/// <summary>
/// A running <c>m3train</c> whose output lines can be waited for while it runs (to learn the ranks' pids, or
/// that they joined), and which can be signalled: what a process-level failure test needs.
/// </summary>
internal sealed class M3TrainRun : IDisposable
{
    readonly Process _process;
    readonly ConcurrentQueue<string> _lines = new();
    readonly Stopwatch _clock = Stopwatch.StartNew();

    public M3TrainRun(IReadOnlyDictionary<string, string> environment, params string[] args) : this(null, environment, args)
    {
    }

    /// <summary>m3train with <paramref name="args"/> run in <paramref name="workingDirectory"/>.</summary>
    public static M3TrainRun In(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args) =>
        new(workingDirectory, environment, args);

    M3TrainRun(string? workingDirectory, IReadOnlyDictionary<string, string> environment, string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) start.WorkingDirectory = workingDirectory;
        start.Environment["OMP_NUM_THREADS"] = "1";
        foreach (var (name, value) in environment) start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "m3train.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data != null) _lines.Enqueue(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data != null) _lines.Enqueue(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public string Output => string.Join("\n", _lines);
    public double Seconds => _clock.Elapsed.TotalSeconds;

    public string WaitForLine(Func<string, bool> match, TimeSpan within)
    {
        var end = DateTime.UtcNow + within;
        while (DateTime.UtcNow < end)
        {
            if (_lines.FirstOrDefault(match) is { } line) return line;
            if (_process.HasExited) break;
            Thread.Sleep(20);
        }
        throw new TimeoutException($"no such line within {within.TotalSeconds} s; the output:\n{Output}");
    }

    /// <summary>The exit code, or a failure with the output so far if it runs past <paramref name="within"/>.</summary>
    public int WaitForExit(TimeSpan within)
    {
        if (!_process.WaitForExit(within)) throw new TimeoutException($"still running after {within.TotalSeconds} s; the output:\n{Output}");
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public static void Signal(int pid, int signal) => kill(pid, signal);

    public static bool IsAlive(int pid) => M3Train.Distributed.LauncherWatch.IsRunning(pid);

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);
}
