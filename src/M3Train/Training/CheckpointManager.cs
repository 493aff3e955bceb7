using System.Globalization;
using Serilog;

namespace M3Train.Training;

/// <summary>
/// Step checkpoints of a run under <c>RUN/checkpoints/step-NNNNNNNN</c>. Each one is written into a hidden
/// temporary folder and renamed into place, so a folder with a step name is always complete; a crash while
/// writing leaves only a temporary folder, removed at the next save. Keeps the last K.
/// </summary>
public sealed class CheckpointManager(string runDirectory, int keepLast)
{
    const string Prefix = "step-";
    const string TempPrefix = ".tmp-";

    public string Root { get; } = Path.Combine(runDirectory, "checkpoints");

    public static string NameOf(int step) => $"{Prefix}{step.ToString("D8", CultureInfo.InvariantCulture)}";

    /// <summary>Writes a checkpoint for <paramref name="step"/> through <paramref name="writeInto"/> (which fills a folder) and returns its path.</summary>
    public string Save(int step, Action<string> writeInto)
    {
        Directory.CreateDirectory(Root);
        foreach (var stale in Directory.EnumerateDirectories(Root, TempPrefix + "*"))
            Directory.Delete(stale, recursive: true);
        string final = Path.Combine(Root, NameOf(step));
        string temp = Path.Combine(Root, $"{TempPrefix}{NameOf(step)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        writeInto(temp);
        if (Directory.Exists(final))
        {
            string old = Path.Combine(Root, $"{TempPrefix}old-{Guid.NewGuid():N}");
            Directory.Move(final, old);
            Directory.Move(temp, final);
            Directory.Delete(old, recursive: true);
        }
        else
            Directory.Move(temp, final);
        Prune();
        return final;
    }

    /// <summary>Complete step checkpoints, oldest first.</summary>
    public IReadOnlyList<(int Step, string Path)> List()
    {
        if (!Directory.Exists(Root)) return [];
        return Directory.EnumerateDirectories(Root, Prefix + "*")
            .Select(d => (Ok: int.TryParse(System.IO.Path.GetFileName(d)[Prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int s), Step: s, Path: d))
            .Where(x => x.Ok)
            .OrderBy(x => x.Step)
            .Select(x => (x.Step, x.Path))
            .ToList();
    }

    public string? Latest() => List() is { Count: > 0 } all ? all[^1].Path : null;

    void Prune()
    {
        var all = List();
        foreach (var (step, path) in all.Take(Math.Max(0, all.Count - keepLast)))
        {
            // Out of the step names first (atomic), so a process killed while deleting leaves no half-deleted step folder.
            string doomed = Path.Combine(Root, $"{TempPrefix}prune-{Guid.NewGuid():N}");
            Directory.Move(path, doomed);
            Directory.Delete(doomed, recursive: true);
            Log.Debug("Removed checkpoint {Step} (keep_last {Keep})", step, keepLast);
        }
    }

    /// <summary>
    /// The checkpoint <c>--resume</c> names: <c>latest</c> (or empty) is the newest complete checkpoint of this
    /// run; anything else is a checkpoint folder.
    /// </summary>
    public string ResolveResume(string? argument)
    {
        if (string.IsNullOrEmpty(argument) || argument == "latest")
            return Latest() ?? throw new M3TrainException($"--resume latest: no complete checkpoint under {Root}.");
        if (!Directory.Exists(argument))
            throw new M3TrainException($"--resume {argument}: no such checkpoint folder.");
        return argument;
    }
}
