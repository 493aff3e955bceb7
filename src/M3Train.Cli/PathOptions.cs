using System.CommandLine;

namespace M3Train.Cli;

/// <summary>
/// File and folder options whose kind is checked by the parser, so a folder given where a file belongs (or the
/// other way round) is a usage error naming the option, before anything loads.
/// </summary>
public static class PathOptions
{
    /// <summary>An existing file to read.</summary>
    public static Option<FileInfo> Input(string name, string description, bool required = true)
    {
        var option = new Option<FileInfo>(name) { Description = description, Required = required };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<FileInfo?>() is not { } file) return;
            if (Directory.Exists(file.FullName)) result.AddError($"{name} {file}: is a folder; give a file.");
            else if (!file.Exists) result.AddError($"{name} {file}: no such file.");
        });
        return option;
    }

    /// <summary>A file to write (through <see cref="VerbOutput"/>); <c>-</c> is standard output where the verb says so.</summary>
    public static Option<FileInfo> Output(string name, string description, bool required = true)
    {
        var option = new Option<FileInfo>(name) { Description = description, Required = required };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<FileInfo?>() is { } file && Directory.Exists(file.FullName))
                result.AddError($"{name} {file}: is a folder; give a file path to write to.");
        });
        return option;
    }

    /// <summary>A folder to write; an existing file there is refused.</summary>
    public static Option<DirectoryInfo> OutputFolder(string name, string description)
    {
        var option = new Option<DirectoryInfo>(name) { Description = description, Required = true };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<DirectoryInfo?>() is { } folder && File.Exists(folder.FullName))
                result.AddError($"{name} {folder}: is a file; give a folder to write to.");
        });
        return option;
    }
}
