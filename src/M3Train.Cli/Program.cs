using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
using M3Train.Cli.Verbs;

namespace M3Train.Cli;

public static class Program
{
    public static string Version { get; } =
        (typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0").Split('+')[0];

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("M3Train: train, evaluate and export BGE-M3-style embedding models (dense, sparse and multi-vector heads) on TorchSharp.");
        root.Add(InfoCommand.Create());
        root.Add(FinetuneCommand.Create());
        root.Add(PretrainCommand.Create());
        root.Add(TokenizeCommand.Create());
        root.Add(ExportOnnxCommand.Create());
        root.Add(ExtendPositionsCommand.Create());
        root.Add(EncodeCommand.Create());
        root.Add(ScoreCommand.Create());
        root.Add(ProbeBatchCommand.Create());
        root.Add(EvalCommand.Create());
        root.Add(MineCommand.Create());
        root.Add(TeacherScoresCommand.Create());
        root.Add(InspectCommand.Create());
        root.Add(BenchCommand.Create());
        root.Add(ConfigCommand.Create());
        root.Add(PlotCommand.Create());
        root.Add(LaunchCommand.Create());
        root.Add(DistCheckCommand.Create());
        root.Add(new Option<bool>(Verbose) { Description = "Print debug log lines, and the stack trace of an internal error (a bug).", Recursive = true });
        return root;
    }

    /// <summary>The global option for debug log lines and the stack trace of an internal error; read before parsing, since logging starts first.</summary>
    const string Verbose = "--verbose";

    public static int Main(string[] args)
    {
        bool verbose = args.Contains(Verbose);
        ConsoleLogging.Configure(verbose);
        if (!args.Any(a => a is "-h" or "--help" or "-?" or "--version") && M3Train.Runtime.ExternalLibTorch.Problem() is { } problem)
        {
            Console.Error.WriteLine($"error: {problem}");
            ConsoleLogging.Close();
            return CliErrors.BadInput;
        }
        try
        {
            return Run(args, Console.Error);
        }
        finally
        {
            ConsoleLogging.Close();
        }
    }

    /// <summary>
    /// Parses and runs a command line; a usage error, and every exception a verb ends with, becomes one line on
    /// <paramref name="error"/> and an exit code (<see cref="CliErrors"/>).
    /// </summary>
    public static int Run(string[] args, TextWriter error)
    {
        bool verbose = args.Contains(Verbose);
        try
        {
            var parse = BuildRoot().Parse(args);
            if (parse.Action is ParseErrorAction)
            {
                foreach (var e in parse.Errors) error.WriteLine($"error: {e.Message}");
                string verb = parse.CommandResult.Command is RootCommand ? "" : parse.CommandResult.Command.Name + " ";
                error.WriteLine($"(m3train {verb}--help lists the options)");
                return CliErrors.BadInput;
            }
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, verbose, error);
        }
    }
}
