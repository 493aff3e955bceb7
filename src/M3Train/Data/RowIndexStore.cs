using System.Diagnostics;
using M3Train.Text;
using Serilog;

namespace M3Train.Data;

/// <summary>
/// Finds or builds the row index of every training file, part by part (docs/DATA.md, "The row index"). A part
/// already built, by an earlier run or by another process now, is mapped; a missing one is built by whichever
/// process takes its lock file first, while the others build other parts, then map what it wrote. So ranks on one
/// machine (or on machines that share the data's file system) index a corpus once, together, without talking to each
/// other, and a crashed builder's lock is released by the system so another process takes the part over. Without
/// <c>data.cache_token_counts</c>, or where the index folder cannot be written, parts are built privately into the
/// temporary folder and deleted once mapped.
/// </summary>
public static class RowIndexStore
{
    public const string FolderName = ".m3train-cache";
    static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);
    static readonly TimeSpan ReportWaitingEvery = TimeSpan.FromSeconds(30);

    /// <summary>The mapped parts of each source, in order; throws <see cref="M3TrainException"/> when a data file cannot be read.</summary>
    public static RowIndexPart[][] Obtain(IReadOnlyList<DataFileSource> sources, XlmrTokenizer tokenizer, DataConfig config)
    {
        var parts = sources.Select(s => new RowIndexPart?[s.Parts.Count]).ToArray();
        try
        {
            var writable = new Dictionary<string, string?>();
            var folders = sources.Select(s => config.CacheTokenCounts ? SharedFolder(s, config, writable) : null).ToArray();
            var all = sources.SelectMany((s, f) => Enumerable.Range(0, s.Parts.Count).Select(k => (File: f, Part: k))).ToArray();
            ParallelWork.ForEach(all.Where(p => folders[p.File] is not null), p =>
                parts[p.File][p.Part] = RowIndexPart.TryOpen(Path.Combine(folders[p.File]!, sources[p.File].PartFileName(p.Part)), sources[p.File].PartKey(p.Part)));
            var pending = all.Where(p => parts[p.File][p.Part] is null).ToList();
            foreach (var (f, k) in pending.Where(p => folders[p.File] is null))
                parts[f][k] = BuildPrivately(sources[f], k, tokenizer, config);
            pending.RemoveAll(p => folders[p.File] is null);
            BuildShared(pending, sources, folders!, parts, tokenizer, config);
            return parts.Select(p => p.Select(x => x!).ToArray()).ToArray();
        }
        catch
        {
            foreach (var part in parts.SelectMany(p => p)) part?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds the parts no other process is building, waits for the others: each part is built by the process that
    /// takes its lock and finds it still missing.
    /// </summary>
    static void BuildShared(List<(int File, int Part)> pending, IReadOnlyList<DataFileSource> sources, string?[] folders,
        RowIndexPart?[][] parts, XlmrTokenizer tokenizer, DataConfig config)
    {
        var waiting = Stopwatch.StartNew();
        while (pending.Count > 0)
        {
            bool progress = false;
            foreach (var (f, k) in pending.ToList())
            {
                string path = Path.Combine(folders[f]!, sources[f].PartFileName(k));
                using var held = TryLock(path + ".lock");
                if (held is null) continue;
                var part = RowIndexPart.TryOpen(path, sources[f].PartKey(k));
                part ??= BuildInto(path, sources[f], k, tokenizer, config) ?? BuildPrivately(sources[f], k, tokenizer, config);
                TryDelete(path + ".lock");
                parts[f][k] = part;
                pending.Remove((f, k));
                progress = true;
                waiting.Restart();
            }
            if (progress || pending.Count == 0) continue;
            if (waiting.Elapsed > ReportWaitingEvery)
            {
                Log.Information("Waiting for {Parts} row index part(s) that other processes are building, e.g. {Part}", pending.Count,
                    Path.Combine(folders[pending[0].File]!, sources[pending[0].File].PartFileName(pending[0].Part)));
                waiting.Restart();
            }
            Thread.Sleep(Poll);
        }
    }

    /// <summary>The lock, or null while another process (or another load in this one) holds it.</summary>
    static FileStream? TryLock(string path)
    {
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Builds a part beside <paramref name="path"/> under a temporary name and renames it into place; null (logged) when that cannot be written.</summary>
    static RowIndexPart? BuildInto(string path, DataFileSource source, int part, XlmrTokenizer tokenizer, DataConfig config)
    {
        string temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            Build(source, part, tokenizer, config, temporary);
            File.Move(temporary, path, overwrite: true);
            return RowIndexPart.TryOpen(path, source.PartKey(part), builtHere: true) ?? throw new IOException($"{path}: the row index part just written does not read back");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warning("Could not write the row index part {Part} ({Reason}); this run keeps its own copy in the temporary folder (set data.index_dir to a writable folder to keep it)", path, e.Message);
            return null;
        }
        finally
        {
            TryDelete(temporary);
        }
    }

    /// <summary>Builds a part for this process alone, in the temporary folder (TMPDIR); a full or unwritable one fails the run as the machine's failure.</summary>
    static RowIndexPart BuildPrivately(DataFileSource source, int part, XlmrTokenizer tokenizer, DataConfig config)
    {
        string folder = Path.Combine(Path.GetTempPath(), "m3train-row-index");
        string path = Path.Combine(folder, $"{source.PartFileName(part)}.{Environment.ProcessId}.{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(folder);
            Build(source, part, tokenizer, config, path);
            return RowIndexPart.TryOpen(path, source.PartKey(part), builtHere: true) ?? throw new IOException($"{path}: the row index part just written does not read back");
        }
        finally
        {
            // The mapping outlives the file's name: nothing is left behind however the run ends.
            TryDelete(path);
        }
    }

    static void Build(DataFileSource source, int part, XlmrTokenizer tokenizer, DataConfig config, string path)
    {
        var clock = Stopwatch.StartNew();
        RowIndexBuilder.Build(source, part, tokenizer, config, path);
        Log.Information("Indexed {File} part {Part} of {Parts} in {Seconds:F1} s", source.Path, part + 1, source.Parts.Count, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Where a source's index is kept: <c>data.index_dir</c> or <c>.m3train-cache/</c> beside it; null (with a warning)
    /// when it cannot be written. Each folder is tried once (<paramref name="tried"/>), however many files it indexes.
    /// </summary>
    static string? SharedFolder(DataFileSource source, DataConfig config, Dictionary<string, string?> tried)
    {
        string folder = config.IndexDir is { } dir ? Path.GetFullPath(dir) : Path.Combine(Path.GetDirectoryName(source.Path)!, FolderName);
        if (!tried.TryGetValue(folder, out string? usable)) tried[folder] = usable = Writable(folder);
        return usable;
    }

    static string? Writable(string folder)
    {
        string probe = Path.Combine(folder, $".probe.{Environment.ProcessId}.{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(folder);
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return folder;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warning("Cannot write the row index into {Folder} ({Reason}); this run keeps its own copy of the index of the data there in the temporary folder (set data.index_dir to a writable folder to keep it)",
                folder, e.Message);
            return null;
        }
    }

    static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
