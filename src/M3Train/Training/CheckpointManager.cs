using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using M3Train.Config;
using Serilog;
using TorchSharp.Modules;

namespace M3Train.Training;

/// <summary>
/// Step checkpoints of a run under <c>RUN/checkpoints/step-NNNNNNNN</c>. Each one is written into a hidden
/// temporary folder, its files' sizes and SHA-256 checksums recorded in <c>checkpoint-manifest.json</c>, and renamed
/// into place, so a folder with a step name is always complete when written; a crash or a full disk while writing
/// leaves only a temporary folder (removed then, or at the next save) and the previous checkpoints as they were.
/// <c>--resume latest</c> takes the newest checkpoint whose files still match their manifest, saying so when it
/// has to fall back. Keeps the last K.
/// </summary>
public sealed class CheckpointManager(string runDirectory, int keepLast)
{
    const string Prefix = "step-";
    const string TempPrefix = ".tmp-";
    public const string ManifestFile = "checkpoint-manifest.json";
    const string OptimizerFile = "optimizer.bin";
    const string ConfigFile = "config.yaml";

    public string Root { get; } = Path.Combine(runDirectory, "checkpoints");

    public static string NameOf(int step) => $"{Prefix}{step.ToString("D8", CultureInfo.InvariantCulture)}";

    /// <summary>Writes a checkpoint for <paramref name="step"/> through <paramref name="writeInto"/> (which fills a folder) and returns its path.</summary>
    /// <exception cref="M3TrainException">Writing failed (a full disk, a read-only folder); nothing of this save is left behind.</exception>
    public string Save(int step, Action<string> writeInto)
    {
        string final = Path.Combine(Root, NameOf(step));
        string temp = Path.Combine(Root, $"{TempPrefix}{NameOf(step)}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(Root);
            foreach (var stale in Directory.EnumerateDirectories(Root, TempPrefix + "*"))
                Directory.Delete(stale, recursive: true);
            Directory.CreateDirectory(temp);
            writeInto(temp);
            WriteManifest(temp);
            if (Directory.Exists(final))
            {
                string old = Path.Combine(Root, $"{TempPrefix}old-{Guid.NewGuid():N}");
                Directory.Move(final, old);
                Directory.Move(temp, final);
                Directory.Delete(old, recursive: true);
            }
            else
                Directory.Move(temp, final);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            RemoveQuietly(temp);
            string previous = Latest() is { } kept ? $"the previous checkpoint {kept} is intact" : "no earlier checkpoint exists";
            throw new M3TrainException($"{final}: writing the checkpoint failed ({e.Message}); its temporary folder was removed and {previous}. " +
                                       "Free disk space (or fix the folder's permissions) and continue with --resume latest.", e);
        }
        catch
        {
            RemoveQuietly(temp);
            throw;
        }
        Prune();
        return final;
    }

    /// <summary>Step checkpoints, oldest first (whether their files are intact is <see cref="Verify"/>'s question).</summary>
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
    /// The checkpoint <c>--resume</c> names: <c>latest</c> (or empty) is the newest checkpoint of this run whose
    /// files match their manifest, older ones taken (with a warning) when newer ones are damaged; anything else is
    /// a checkpoint folder, which must be intact.
    /// </summary>
    public string ResolveResume(string? argument)
    {
        if (string.IsNullOrEmpty(argument) || argument == "latest")
        {
            var damaged = new List<string>();
            foreach (var (_, path) in List().Reverse())
            {
                if (Verify(path) is { } problem)
                {
                    damaged.Add($"{Path.GetFileName(path)}: {problem}");
                    continue;
                }
                if (damaged.Count > 0)
                    Log.Warning("--resume latest: {Count} newer checkpoint(s) are damaged ({Problems}); resuming from {Checkpoint}, the newest complete one",
                        damaged.Count, string.Join("; ", damaged), path);
                return path;
            }
            throw new M3TrainException($"--resume latest: no complete checkpoint under {Root}" +
                                       (damaged.Count > 0 ? $" ({string.Join("; ", damaged)})." : "."));
        }
        if (!Directory.Exists(argument))
            throw new M3TrainException($"--resume {argument}: no such checkpoint folder.");
        if (Verify(argument) is { } damage)
            throw new M3TrainException($"--resume {argument}: the checkpoint is damaged ({damage}). Resume from another checkpoint, " +
                                       "or pass --resume latest to take the newest complete one of the run.");
        return argument;
    }

    /// <summary>Null when every file the manifest lists is there with its recorded size and checksum; else what is wrong.</summary>
    public static string? Verify(string checkpoint)
    {
        string manifestPath = Path.Combine(checkpoint, ManifestFile);
        if (!File.Exists(manifestPath))
        {
            Log.Warning("{Checkpoint}: no {Manifest} (written before checksums were recorded), so its files cannot be verified", checkpoint, ManifestFile);
            return null;
        }
        List<(string Path, long Bytes, string Sha256)> files;
        try
        {
            files = ReadManifest(manifestPath);
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException)
        {
            return $"{ManifestFile} is unreadable ({e.Message})";
        }
        foreach (var (relative, bytes, sha256) in files)
        {
            string file = Path.Combine(checkpoint, relative);
            if (!File.Exists(file)) return $"{relative} is missing";
            long actual = new FileInfo(file).Length;
            if (actual != bytes) return $"{relative} is {actual} bytes, {bytes} when saved";
            if (Sha256(file) != sha256) return $"{relative} does not match its recorded SHA-256 checksum";
        }
        return null;
    }

    /// <summary>Reads the optimizer state of <paramref name="checkpoint"/> into <paramref name="optimizer"/>, or says why it cannot.</summary>
    public static void LoadOptimizer(OptimizerHelper optimizer, string checkpoint)
    {
        string path = Path.Combine(checkpoint, OptimizerFile);
        if (!File.Exists(path) || new FileInfo(path).Length == 0)
            throw new M3TrainException($"{path}: {(File.Exists(path) ? "empty" : "missing")}; the checkpoint is incomplete. Resume from another checkpoint (--resume DIR) or --resume latest.");
        try
        {
            optimizer.load_state_dict(path);
        }
        catch (Exception e) when (e is not (M3TrainException or OutOfMemoryException))
        {
            throw new M3TrainException($"{path}: the optimizer state cannot be read ({e.GetType().Name}: {e.Message}); the file is damaged or was saved for " +
                                       "other trainable parameters (train.freeze, model.heads). Resume from another checkpoint, or with the settings it was saved with.", e);
        }
    }

    /// <summary>Each key whose value differs between the config a checkpoint was saved with and <paramref name="yaml"/>, as "key: saved → now".</summary>
    public static IReadOnlyList<string> ConfigChanges(string checkpoint, string yaml)
    {
        string saved = Path.Combine(checkpoint, ConfigFile);
        if (!File.Exists(saved)) return [];
        Dictionary<string, string?> before;
        try
        {
            before = Flatten(ConfigParser.ParseYaml(File.ReadAllText(saved), saved));
        }
        catch (M3TrainException e)
        {
            return [$"{ConfigFile} of the checkpoint cannot be compared ({e.Message})"];
        }
        var now = Flatten(ConfigParser.ParseYaml(yaml, "resolved config"));
        return before.Keys.Union(now.Keys).Order(StringComparer.Ordinal)
            .Where(k => before.GetValueOrDefault(k) != now.GetValueOrDefault(k))
            .Select(k => $"{k}: {before.GetValueOrDefault(k) ?? "(absent)"} → {now.GetValueOrDefault(k) ?? "(absent)"}")
            .ToList();
    }

    /// <summary>Logs <see cref="ConfigChanges"/>, so resuming another run's checkpoint, or with other settings, says what differs.</summary>
    public static void WarnConfigChanges(string checkpoint, RunConfig config)
    {
        var changes = ConfigChanges(checkpoint, ConfigWriter.ToYaml(config));
        if (changes.Count > 0)
            Log.Warning("Resuming {Checkpoint} with {Count} setting(s) other than it was saved with:\n  {Changes}", checkpoint, changes.Count, string.Join("\n  ", changes));
    }

    static Dictionary<string, string?> Flatten(ConfigNode node)
    {
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        void Walk(ConfigNode n, string key)
        {
            switch (n)
            {
                case ConfigNode.Map map:
                    foreach (var (k, child) in map.Entries) Walk(child, key.Length == 0 ? k : $"{key}.{k}");
                    break;
                case ConfigNode.Seq seq:
                    result[key] = "[" + string.Join(", ", seq.Items.Select(i => i is ConfigNode.Scalar s ? s.Value : "...")) + "]";
                    break;
                case ConfigNode.Scalar scalar:
                    result[key] = scalar.Value;
                    break;
            }
        }
        Walk(node, "");
        return result;
    }

    static void WriteManifest(string folder)
    {
        var files = new JsonArray();
        foreach (string file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string relative = Path.GetRelativePath(folder, file).Replace(Path.DirectorySeparatorChar, '/');
            files.Add(new JsonObject { ["path"] = relative, ["bytes"] = new FileInfo(file).Length, ["sha256"] = Sha256(file) });
        }
        var manifest = new JsonObject { ["format"] = 1, ["files"] = files };
        File.WriteAllText(Path.Combine(folder, ManifestFile), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    static List<(string, long, string)> ReadManifest(string path)
    {
        var root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new FormatException("not a JSON object");
        var files = root["files"] as JsonArray ?? throw new FormatException("no \"files\" list");
        var result = new List<(string, long, string)>();
        foreach (var f in files)
        {
            if (f is not JsonObject o
                || o["path"] is not JsonValue p || !p.TryGetValue(out string? relative) || relative.Length == 0
                || Path.IsPathRooted(relative) || relative.Split('/').Contains("..")
                || o["bytes"] is not JsonValue b || !b.TryGetValue(out long bytes)
                || o["sha256"] is not JsonValue h || !h.TryGetValue(out string? sha256))
                throw new FormatException($"bad entry {f?.ToJsonString()}");
            result.Add((relative, bytes, sha256));
        }
        return result;
    }

    static string Sha256(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    static void RemoveQuietly(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warning("Could not remove {Folder} ({Reason}); the next save removes it", folder, e.Message);
        }
    }
}
