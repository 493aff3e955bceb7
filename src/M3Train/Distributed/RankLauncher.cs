using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace M3Train.Distributed;

/// <summary>
/// The engine of <c>m3train launch</c>: starts this machine's ranks as child processes with the <c>M3_*</c>
/// variables, prefixes their output lines with the rank (and writes each rank's own log), forwards SIGINT and
/// SIGTERM to them once, and when one rank fails, stops the others (SIGTERM, then SIGKILL after the grace
/// period) and returns that rank's exit code, naming it.
/// </summary>
/// <remarks>
/// Each rank runs in a session of its own (through <c>setsid</c>), so a terminal's Ctrl-C reaches it exactly
/// once — forwarded by the launcher — rather than twice, which a rank that saves a checkpoint on the first
/// signal would take as "stop now". A rank whose launcher dies stops itself (<see cref="LauncherWatch"/>).
/// </remarks>
public sealed class RankLauncher
{
    const int SigInt = 2, SigKill = 9, SigTerm = 15;

    readonly LaunchOptions _options;
    readonly TextWriter _out;
    readonly TextWriter _err;
    readonly List<Rank> _ranks = [];
    readonly object _console = new();
    DateTime? _killAt;
    int _signals;

    RankLauncher(LaunchOptions options, TextWriter stdout, TextWriter stderr)
    {
        _options = options;
        _out = stdout;
        _err = stderr;
    }

    sealed class Rank(int number, Process process, string log, StreamWriter logWriter, Task[] pumps)
    {
        public int Number => number;
        public Process Process => process;
        public string Log => log;
        public StreamWriter LogWriter => logWriter;
        public Task[] Pumps => pumps;
        public int? ExitCode { get; set; }
    }

    /// <summary>Runs <paramref name="program"/> <paramref name="arguments"/> as this machine's ranks and returns the job's exit code.</summary>
    public static int Run(LaunchOptions options, string program, IReadOnlyList<string> arguments, TextWriter stdout, TextWriter stderr)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            throw new M3TrainException("m3train launch runs on Linux and macOS; on Windows start one process per rank with the M3_* variables set.");
        return new RankLauncher(options, stdout, stderr).Run(program, arguments);
    }

    int Run(string program, IReadOnlyList<string> arguments)
    {
        Directory.CreateDirectory(_options.LogDirectory);
        Say($"{_options.WorldSize} rank{(_options.WorldSize > 1 ? "s" : "")} ({_options.Nodes} node{(_options.Nodes > 1 ? "s" : "")} × {_options.ProcessesPerNode}), " +
            $"rendezvous {_options.MasterAddress}:{_options.MasterPort}, logs in {_options.LogDirectory}");
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Signalled(context, SigInt));
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Signalled(context, SigTerm));
        try
        {
            for (int local = 0; local < _options.ProcessesPerNode; local++)
                _ranks.Add(Start(_options.NodeRank * _options.ProcessesPerNode + local, local, program, arguments));
        }
        catch
        {
            foreach (var rank in _ranks) Kill(rank, SigKill);
            throw;
        }
        var failed = Supervise();
        foreach (var rank in _ranks)
        {
            Task.WaitAll(rank.Pumps, TimeSpan.FromSeconds(5));
            rank.LogWriter.Dispose();
        }
        if (_signals > 0)
        {
            int first = _ranks.Select(r => r.ExitCode!.Value).FirstOrDefault(c => c != 0);
            Say($"stopped on a signal; exit codes {string.Join(", ", _ranks.Select(r => $"rank {r.Number} {Describe(r.ExitCode!.Value)}"))}");
            return first is > 0 and < 256 ? first : first == 0 ? 0 : 1;
        }
        if (failed is null)
        {
            Say($"all {_ranks.Count} rank{(_ranks.Count > 1 ? "s" : "")} finished");
            return 0;
        }
        int code = failed.ExitCode!.Value;
        lock (_console)
            _err.WriteLine($"error: rank {failed.Number} (pid {failed.Process.Id}) failed with exit code {Describe(code)}; the other ranks were stopped. Its output: {failed.Log}");
        return code is > 0 and < 256 ? code : 1;
    }

    Rank Start(int number, int local, string program, IReadOnlyList<string> arguments)
    {
        // setsid (util-linux) execs in place when, as here, the caller is no process-group leader: the pid stays the rank's.
        string? setsid = OperatingSystem.IsLinux() ? new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists) : null;
        var start = new ProcessStartInfo(setsid ?? program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        if (setsid != null) start.ArgumentList.Add(program);
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        var env = start.Environment;
        env[DistributedVariables.Rank] = number.ToString(CultureInfo.InvariantCulture);
        env[DistributedVariables.WorldSize] = _options.WorldSize.ToString(CultureInfo.InvariantCulture);
        env[DistributedVariables.LocalRank] = local.ToString(CultureInfo.InvariantCulture);
        env[DistributedVariables.LocalWorldSize] = _options.ProcessesPerNode.ToString(CultureInfo.InvariantCulture);
        env[DistributedVariables.MasterAddress] = _options.MasterAddress;
        env[DistributedVariables.RendezvousPort] = _options.MasterPort.ToString(CultureInfo.InvariantCulture);
        env[DistributedVariables.JobToken] = _options.Token.Value;
        env[DistributedVariables.LauncherPid] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        // N ranks each with a libtorch pool as wide as the machine would oversubscribe it N times over.
        if (Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is null)
            env["OMP_NUM_THREADS"] = Math.Max(1, Environment.ProcessorCount / _options.ProcessesPerNode).ToString(CultureInfo.InvariantCulture);

        string log = Path.Combine(_options.LogDirectory, $"rank-{number}.log");
        var logWriter = new StreamWriter(log, append: false) { AutoFlush = true };
        var process = Process.Start(start) ?? throw new M3TrainException($"could not start rank {number}: {program}");
        process.StandardInput.Close();
        string prefix = $"[rank {number}] ";
        var pumps = new[] { Pump(process.StandardOutput, _out, prefix, logWriter), Pump(process.StandardError, _err, prefix, logWriter) };
        Say($"rank {number} is pid {process.Id}, log {log}");
        return new Rank(number, process, log, logWriter, pumps);
    }

    Task Pump(StreamReader source, TextWriter target, string prefix, StreamWriter log) => Task.Run(async () =>
    {
        while (await source.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            lock (_console) target.WriteLine(prefix + line);
            lock (log) log.WriteLine(line);
        }
    });

    /// <summary>Waits for every rank; the first to fail makes the launcher stop the others. Returns that rank, or null.</summary>
    Rank? Supervise()
    {
        Rank? failed = null;
        while (true)
        {
            foreach (var rank in _ranks.Where(r => r.ExitCode is null && r.Process.HasExited))
            {
                rank.Process.WaitForExit();
                rank.ExitCode = rank.Process.ExitCode;
                if (rank.ExitCode == 0) continue;
                Say($"rank {rank.Number} exited with code {Describe(rank.ExitCode.Value)}");
                if (failed is null && _signals == 0)
                {
                    failed = rank;
                    StopAll(SigTerm, $"stopping the other ranks (SIGTERM, SIGKILL after {_options.Grace.TotalSeconds:0} s)");
                }
            }
            if (_ranks.All(r => r.ExitCode is not null)) return failed;
            if (_killAt is { } deadline && DateTime.UtcNow > deadline)
            {
                StopAll(SigKill, "ranks still running after the grace period: SIGKILL");
                _killAt = DateTime.MaxValue;
            }
            Thread.Sleep(50);
        }
    }

    void Signalled(PosixSignalContext context, int signal)
    {
        context.Cancel = true;
        if (Interlocked.Increment(ref _signals) == 1)
            StopAll(signal, $"{(signal == SigInt ? "SIGINT" : "SIGTERM")}: passed on to every rank (again to kill them at once)");
        else
            StopAll(SigKill, "second signal: SIGKILL to every rank");
    }

    void StopAll(int signal, string why)
    {
        Say(why);
        foreach (var rank in _ranks.Where(r => r.ExitCode is null)) Kill(rank, signal);
        _killAt ??= DateTime.UtcNow + _options.Grace;
    }

    static void Kill(Rank rank, int signal)
    {
        try
        {
            if (!rank.Process.HasExited) kill(rank.Process.Id, signal);
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>.NET reports a rank killed by signal N as exit code 128 + N.</summary>
    static string Describe(int code) => code switch
    {
        134 => "134 (SIGABRT)",
        137 => "137 (killed by SIGKILL)",
        139 => "139 (SIGSEGV)",
        143 => "143 (SIGTERM)",
        130 => "130 (SIGINT)",
        _ => code.ToString(CultureInfo.InvariantCulture),
    };

    void Say(string message)
    {
        lock (_console) _err.WriteLine($"launch: {message}");
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);
}
