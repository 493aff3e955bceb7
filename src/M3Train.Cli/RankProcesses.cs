using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using M3Train.Distributed;

namespace M3Train.Cli;

/// <summary>
/// Starting this m3train again as the ranks of a job on this machine, through <see cref="RankLauncher"/>: what
/// <c>m3train launch</c> does, and what <c>finetune</c>/<c>pretrain</c> with several devices and <c>bench --nproc</c> do by
/// themselves.
/// </summary>
public static class RankProcesses
{
    /// <summary>This m3train as a program to start: the apphost, or <c>dotnet m3train.dll</c>.</summary>
    public static (string Program, string[] Prefix) Self()
    {
        string host = Environment.ProcessPath ?? throw new M3TrainException("cannot tell which program this m3train runs as.");
        return Path.GetFileNameWithoutExtension(host) == "dotnet"
            ? (host, [Assembly.GetEntryAssembly()!.Location])
            : (host, []);
    }

    /// <summary>A port free on the loopback interface now, for a job on this machine only.</summary>
    public static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>
    /// Runs <paramref name="arguments"/> (an m3train command line without the program) as <paramref name="processes"/> ranks
    /// on this machine, each rank's output in <paramref name="logDirectory"/>/rank-R.log, and returns the job's exit code.
    /// </summary>
    public static int Run(int processes, IReadOnlyList<string> arguments, string logDirectory, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var options = new LaunchOptions
        {
            ProcessesPerNode = processes,
            MasterPort = FreePort(),
            Token = JobToken.Generate(),
            LogDirectory = logDirectory,
        };
        var (program, prefix) = Self();
        return RankLauncher.Run(options, program, [.. prefix, .. arguments], stdout ?? Console.Out, stderr ?? Console.Error);
    }

    /// <summary>The command line <paramref name="parse"/> came from, without the program: to run it again as ranks.</summary>
    public static IReadOnlyList<string> CommandLine(ParseResult parse) => [.. parse.Tokens.Select(t => t.Value)];
}
