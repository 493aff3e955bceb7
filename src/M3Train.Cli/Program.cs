using System.CommandLine;
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
        return root;
    }

    public static int Main(string[] args)
    {
        ConsoleLogging.Configure();
        if (!args.Any(a => a is "-h" or "--help" or "-?" or "--version") && M3Train.Runtime.ExternalLibTorch.Problem() is { } problem)
        {
            Console.Error.WriteLine($"error: {problem}");
            ConsoleLogging.Close();
            return 2;
        }
        try
        {
            return BuildRoot().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (UserError(e) is { } message)
        {
            Console.Error.WriteLine($"error: {message}");
            return 2;
        }
        finally
        {
            ConsoleLogging.Close();
        }
    }

    static string? UserError(Exception e)
    {
        for (Exception? x = e; x != null; x = x.InnerException)
            if (x is M3TrainException or M3Train.Onnx.M3OnnxException) return x.Message;
        return null;
    }
}
