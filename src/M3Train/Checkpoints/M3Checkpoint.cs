using M3Train.Model;

namespace M3Train.Checkpoints;

/// <summary>
/// A loaded checkpoint folder: the model, how its files named their tensors (so a save keeps the
/// names), and what the load found. Owns the model and the layout's passthrough tensors.
/// </summary>
public sealed class M3Checkpoint : IDisposable
{
    internal M3Checkpoint(string directory, M3Model model, CheckpointLayout layout, bool headsLoaded,
        IReadOnlyList<string> missingKeys, IReadOnlyList<string> unexpectedKeys)
    {
        Directory = directory;
        Model = model;
        Layout = layout;
        HeadsLoaded = headsLoaded;
        MissingKeys = missingKeys;
        UnexpectedKeys = unexpectedKeys;
    }

    /// <summary>The folder it was loaded from (tokenizer files are copied from here on save).</summary>
    public string Directory { get; }

    public M3Model Model { get; }

    public XlmRobertaConfig Config => Model.Config;

    public CheckpointLayout Layout { get; }

    /// <summary>Whether both head files were there; otherwise the heads are freshly initialized.</summary>
    public bool HeadsLoaded { get; }

    /// <summary>Model parameters the checkpoint lacked (only non-empty with <see cref="M3CheckpointLoadOptions.AllowMissing"/>).</summary>
    public IReadOnlyList<string> MissingKeys { get; }

    /// <summary>Checkpoint keys the model has no parameter for (only non-empty with <see cref="M3CheckpointLoadOptions.AllowUnexpected"/>).</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; }

    /// <summary>Loads a checkpoint folder; see <see cref="M3CheckpointLoader.Load"/>.</summary>
    public static M3Checkpoint Load(string directory, M3CheckpointLoadOptions? options = null) =>
        M3CheckpointLoader.Load(directory, options);

    /// <summary>Saves the model with this checkpoint's key names and tokenizer files; see <see cref="M3CheckpointWriter.Save"/>.</summary>
    public void Save(string directory) => M3CheckpointWriter.Save(Model, directory, Layout, Directory);

    public void Dispose()
    {
        Model.Dispose();
        Layout.Dispose();
    }
}
