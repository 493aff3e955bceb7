namespace M3Train.Runtime;

/// <summary>
/// A file written under a temporary name beside its target and renamed over it by <see cref="Commit"/>, so a
/// run that fails part-way (bad input, full disk, Ctrl-C) leaves whatever file was there before untouched and
/// never a half-written one. Disposing without committing deletes the temporary file.
/// </summary>
public sealed class AtomicFile : IDisposable
{
    readonly string _temporary;
    bool _committed;

    AtomicFile(string target, string temporary, FileStream stream)
    {
        Target = target;
        _temporary = temporary;
        Stream = stream;
    }

    /// <summary>The full path the file gets on <see cref="Commit"/>.</summary>
    public string Target { get; }

    /// <summary>The temporary file's stream; write the content here.</summary>
    public FileStream Stream { get; }

    /// <summary>Starts writing <paramref name="path"/>; its folder is created when missing.</summary>
    public static AtomicFile Create(string path)
    {
        string target = Path.GetFullPath(path);
        if (Directory.Exists(target)) throw new M3TrainException($"{target}: is a folder; give a file path to write to.");
        string folder = Path.GetDirectoryName(target) ?? throw new M3TrainException($"{target}: cannot write a file at a file-system root.");
        Directory.CreateDirectory(folder);
        // Hidden and unique, so two runs writing the same target never share a temporary file.
        string temporary = Path.Combine(folder, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");
        return new AtomicFile(target, temporary, new FileStream(temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16));
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8, no BOM) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text)
    {
        using var file = Create(path);
        using (var writer = new StreamWriter(file.Stream, new System.Text.UTF8Encoding(false), leaveOpen: true))
            writer.Write(text);
        file.Commit();
    }

    /// <summary>Flushes the content to disk and renames the temporary file over the target.</summary>
    public void Commit()
    {
        // On disk before the rename, so a power cut after it cannot leave the target empty.
        Stream.Flush(flushToDisk: true);
        Stream.Dispose();
        File.Move(_temporary, Target, overwrite: true);
        _committed = true;
    }

    public void Dispose()
    {
        Stream.Dispose();
        if (!_committed) File.Delete(_temporary);
    }
}
