using System.Runtime.InteropServices;
using Serilog;

namespace M3Train.Distributed;

/// <summary>
/// A rank started by <c>m3train launch</c> runs in a session of its own (so a terminal's Ctrl-C reaches it once,
/// forwarded by the launcher). If the launcher itself is killed, nothing would tell the rank; this watch notices
/// (its parent process changes) and sends the rank SIGTERM, as the launcher would have.
/// </summary>
public sealed class LauncherWatch : IDisposable
{
    readonly Timer _timer;
    readonly int _launcher;

    LauncherWatch(int launcher)
    {
        _launcher = launcher;
        _timer = new Timer(_ => Check(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public static LauncherWatch? FromEnvironment() =>
        OperatingSystem.IsLinux() && int.TryParse(Environment.GetEnvironmentVariable(DistributedVariables.LauncherPid), out int pid) && getppid() == pid
            ? new LauncherWatch(pid)
            : null;

    void Check()
    {
        if (getppid() == _launcher) return;
        _timer.Change(Timeout.Infinite, Timeout.Infinite);
        Log.Error("the launcher (pid {Pid}) is gone: stopping this rank", _launcher);
        kill(Environment.ProcessId, 15);
    }

    public void Dispose() => _timer.Dispose();

    [DllImport("libc")] static extern int getppid();
    [DllImport("libc")] static extern int kill(int pid, int signal);
}
