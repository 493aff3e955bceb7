using M3Train.Runtime;

namespace M3Train.Cli;

/// <summary>
/// Where a verb writes its result. A file is written through <see cref="AtomicFile"/>, so a failed run leaves an
/// existing file as it was; <c>-</c> is standard output (the log is on standard error). An output that is the same
/// file as one of the verb's inputs is refused before anything is read: the result would replace its own input.
/// Files under <c>/dev</c> (<c>/dev/stdout</c>, <c>/dev/null</c>) are written in place, since renaming over them
/// would replace the device.
/// </summary>
public sealed class VerbOutput : IDisposable
{
    readonly AtomicFile? _file;

    VerbOutput(Stream stream, string name, AtomicFile? file)
    {
        Stream = stream;
        Name = name;
        _file = file;
    }

    /// <summary>Where the bytes go until <see cref="Commit"/>.</summary>
    public Stream Stream { get; }

    /// <summary>The output as messages name it: its full path, or "stdout".</summary>
    public string Name { get; }

    /// <summary>True for <c>-</c>.</summary>
    public bool IsStandardOutput => Name == StandardOutput;

    const string StandardOutput = "stdout";

    /// <summary>True when <paramref name="output"/> is <c>-</c>.</summary>
    public static bool IsDash(FileInfo output) => output.ToString() == "-";

    /// <summary>Refuses <paramref name="output"/> when it is a folder or the same file as one of <paramref name="inputs"/>.</summary>
    public static void Check(string option, FileInfo output, params (string Option, FileInfo? File)[] inputs)
    {
        if (IsDash(output)) return;
        if (Directory.Exists(output.FullName))
            throw new M3TrainException($"{option} {output.FullName}: is a folder; give a file path to write to.");
        foreach (var (inputOption, input) in inputs)
            if (input is not null && SameFile(input.FullName, output.FullName))
                throw new M3TrainException($"{option} {output.FullName}: is the file {inputOption} reads; writing it would destroy the input (give another output path).");
    }

    /// <summary>Checks <paramref name="output"/> as <see cref="Check"/> does and opens it.</summary>
    public static VerbOutput Open(string option, FileInfo output, params (string Option, FileInfo? File)[] inputs)
    {
        Check(option, output, inputs);
        if (IsDash(output)) return new VerbOutput(Console.OpenStandardOutput(), StandardOutput, null);
        if (output.FullName.StartsWith("/dev/", StringComparison.Ordinal) && output.Exists)
            return new VerbOutput(new FileStream(output.FullName, FileMode.Open, FileAccess.Write), output.FullName, null);
        var file = AtomicFile.Create(output.FullName);
        return new VerbOutput(file.Stream, file.Target, file);
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8) to <paramref name="output"/> as <see cref="Open"/> does; returns the output's name.</summary>
    public static string WriteAllText(string option, FileInfo output, string text, params (string Option, FileInfo? File)[] inputs)
    {
        using var file = Open(option, output, inputs);
        using (var writer = new StreamWriter(file.Stream, new System.Text.UTF8Encoding(false), leaveOpen: true))
            writer.Write(text);
        file.Commit();
        return file.Name;
    }

    /// <summary>Completes the output: the temporary file is renamed into place (a stream is flushed).</summary>
    public void Commit()
    {
        if (_file is not null) _file.Commit();
        else Stream.Flush();
    }

    public void Dispose()
    {
        if (_file is not null) _file.Dispose();
        else Stream.Dispose();
    }

    /// <summary>
    /// Whether two paths name one file: equal full paths, or equal once symbolic links along them are followed.
    /// A hard link is not detected; it needs no refusal either, since the rename replaces only the output's name.
    /// </summary>
    public static bool SameFile(string a, string b) =>
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), PathComparison) || string.Equals(RealPath(a), RealPath(b), PathComparison);

    static readonly StringComparison PathComparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    /// <summary>The path with every symbolic link along it followed (missing parts kept as written).</summary>
    static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full)!;
        string current = root;
        foreach (string part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            var info = new FileInfo(current);
            if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                current = target.FullName;
        }
        return current;
    }
}
