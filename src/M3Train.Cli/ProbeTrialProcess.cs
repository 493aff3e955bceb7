using System.Diagnostics;
using M3Train.Config;
using M3Train.Training;

namespace M3Train.Cli;

/// <summary>
/// Runs each <see cref="ProbeTrial"/> of a CUDA probe in a child process (<c>m3train probe-batch --config FILE --trial JSON</c>),
/// which prints its <see cref="ProbeTrialResult"/> as the last line of its output. A GPU trial cannot run in the probing
/// process: with activation checkpointing, an out-of-memory error inside a layer's recomputation is thrown from a callback
/// that libtorch's autograd threads make into .NET, and an exception there ends the process instead of reaching a catch.
/// A fresh process also starts with an empty CUDA allocator cache, so each trial's peak is its own.
/// </summary>
/// <param name="command">The program and arguments that start the probe verb, e.g. [m3train, probe-batch].</param>
public sealed class ProbeTrialProcess(IReadOnlyList<string> command) : IProbeTrialRunner
{
    public ProbeTrialResult Run(RunConfig config, ProbeTrial trial)
    {
        string path = Path.Combine(Path.GetTempPath(), $"m3train-probe-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, ConfigWriter.ToYaml(config));
        try
        {
            return Run(path, trial);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>One trial of the run config file <paramref name="configPath"/>.</summary>
    public ProbeTrialResult Run(string configPath, ProbeTrial trial)
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
