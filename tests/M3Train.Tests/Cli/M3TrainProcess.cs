using System.Diagnostics;

namespace M3Train.Tests.Cli;

/// <summary>Runs the built <c>m3train</c> as a process, so its exit code, standard output and log are the real ones.</summary>
internal static class M3TrainProcess
{
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        // As TestSetup does in-process: tests run in parallel on few cores, and libtorch's spinning pool would oversubscribe them.
        start.Environment["OMP_NUM_THREADS"] = "1";
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "m3train.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
