using System.Diagnostics;

namespace M3Train.Training;

/// <summary>
/// Runs each <see cref="ProbeTrial"/> in a child process (<c>m3train probe-batch --config FILE --trial JSON</c>), which
/// prints its <see cref="ProbeTrialResult"/> as the last line of its output. A GPU trial cannot run in the probing process:
/// with activation checkpointing, an out-of-memory error inside a layer's recomputation is thrown from a callback that
/// libtorch's autograd threads make into .NET, and an exception there ends the process instead of reaching a catch.
/// A fresh process also starts with an empty CUDA allocator cache, so each trial's peak is its own.
/// </summary>
/// <param name="command">The program and arguments that start the probe verb, e.g. [m3train, probe-batch].</param>
/// <param name="configPath">The resolved run config the child loads.</param>
public sealed class ProbeTrialProcess(IReadOnlyList<string> command, string configPath)
{
    public ProbeTrialResult Run(ProbeTrial trial)
    {
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in command.Skip(1)) start.ArgumentList.Add(a);
        foreach (string a in (string[])["--config", configPath, "--trial", trial.ToJson()]) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new M3TrainException($"could not start {command[0]} for a probe trial");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        string? result = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .LastOrDefault(l => l.StartsWith('{'));
        if (process.ExitCode == 0 && result is not null) return ProbeTrialResult.FromJson(result);
        // A process that died of an out-of-memory error (see above) says so in its last words.
        if (stderr.Result.Contains("out of memory", StringComparison.OrdinalIgnoreCase)) return ProbeTrialResult.OutOfMemoryResult;
        string tail = stderr.Result.Length > 4000 ? stderr.Result[^4000..] : stderr.Result;
        throw new M3TrainException($"probe trial {trial} failed with exit code {process.ExitCode}:\n{tail.Trim()}");
    }
}
