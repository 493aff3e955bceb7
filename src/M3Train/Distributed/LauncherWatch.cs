using System.Runtime.InteropServices;
using Serilog;

namespace M3Train.Distributed;

/// <summary>
/// A rank started by <c>m3train launch</c> runs in a session of its own (so a terminal's Ctrl-C reaches it once,
/// forwarded by the launcher). If the launcher itself is killed, nothing would tell the rank; this watch checks
/// every second that the launcher still runs and otherwise sends the rank SIGTERM, as the launcher would have.
/// </summary>
public sealed class LauncherWatch : IDisposable
{
    readonly Timer _timer;
    readonly int _launcher;

    LauncherWatch(int launcher)
    {
        _launcher = launcher;
        _timer = new Timer(_ => Check(), null, TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    /// <summary>A watch on the launcher named by <see cref="DistributedVariables.LauncherPid"/>, or null when no launcher started this process.</summary>
    public static LauncherWatch? FromEnvironment() =>
        OperatingSystem.IsLinux() && int.TryParse(Environment.GetEnvironmentVariable(DistributedVariables.LauncherPid), out int pid) && pid > 0
            ? new LauncherWatch(pid)
            : null;

    /// <summary>Whether <paramref name="pid"/> runs; a zombie (ended, not yet reaped) does not.</summary>
    public static bool IsRunning(int pid)
    {
        if (kill(pid, 0) != 0) return false;
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    void Check()
    {
        if (IsRunning(_launcher)) return;
        _timer.Change(Timeout.Infinite, Timeout.Infinite);
        Log.Error("the launcher (pid {Pid}) is gone: stopping this rank", _launcher);
        kill(Environment.ProcessId, 15);
    }

    public void Dispose() => _timer.Dispose();

    [DllImport("libc")] static extern int kill(int pid, int signal);
}
