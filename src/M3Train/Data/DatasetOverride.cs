using System.ComponentModel.DataAnnotations;
using M3Train.Config;

namespace M3Train.Data;

/// <summary>
/// One entry of <c>data.dataset_overrides</c>: settings for the datasets of one file, or of every file under one
/// folder, in place of the run-wide ones (FlagEmbedding reads a file's batch size from its rows' <c>batch_size</c>;
/// here the config says it).
/// </summary>
public sealed record DatasetOverride : IConfigValidatable
{
    /// <summary>A data file, or a folder: the entry applies to the files under it. Relative paths resolve as <c>data.files</c> do. Required.</summary>
    public string Path { get; init; } = "";

    /// <summary>Queries per replica in every batch of these files, every length bin alike, in place of <c>data.batch_sizes</c> (and of the halving of symmetric types). Null: the run's.</summary>
    [Range(1, int.MaxValue)] public int? BatchSize { get; init; }

    /// <summary>Passages per query for these files, in place of <c>data.train_group_size</c> (the <c>type</c> rules still apply to it). Null: the run's.</summary>
    [Range(1, 1024)] public int? TrainGroupSize { get; init; }

    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (string.IsNullOrWhiteSpace(Path)) yield return ("path", "is required: the data file or folder the entry applies to.");
        if (BatchSize is null && TrainGroupSize is null) yield return ("path", $"{Path}: the entry sets neither batch_size nor train_group_size.");
    }

    /// <summary>Whether <paramref name="file"/> (a full path) is this entry's file or lies under its folder.</summary>
    public bool Covers(string file)
    {
        string own = System.IO.Path.GetFullPath(Path).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        return file == own || file.StartsWith(own + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }
}
