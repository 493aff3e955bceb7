using System.CommandLine;
using System.Reflection;
using TorchSharp;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train info</c>: what this build runs on.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Print TorchSharp/libtorch versions, the backend, threads and CUDA devices.");
        command.SetAction(_ => Run());
        return command;
    }

    static int Run()
    {
        string torchSharp = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                            ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "?";
        Console.WriteLine($"m3train          {Program.Version}");
        Console.WriteLine($"TorchSharp       {torchSharp.Split('+')[0]}");
        Console.WriteLine($"libtorch         {torch.__version__}");
        Console.WriteLine($"backend          {M3Train.Runtime.BuildInfo.TorchBackend}");
        Console.WriteLine($"native args      {(M3Train.Runtime.BuildInfo.TorchSharpArgumentsKeptAlive ? "kept alive through libtorch calls (TorchSharp.dll patched)" : "NOT kept alive: " + M3Train.Runtime.BuildInfo.TorchSharpPatchWarning())}");
        Console.WriteLine($"threads          {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op ({Environment.ProcessorCount} cores)");
        bool cuda = torch.cuda.is_available();
        Console.WriteLine($"cuda             {(cuda ? "available" : "not available")}");
        if (cuda)
        {
            foreach (var gpu in M3Train.Runtime.CudaInfo.Devices())
                Console.WriteLine($"  cuda:{gpu.Index}         {gpu.Name}, {gpu.TotalBytes / (1024.0 * 1024 * 1024):F1} GiB");
        }
        return 0;
    }
}
