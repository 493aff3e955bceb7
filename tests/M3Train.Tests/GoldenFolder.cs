using M3Train.Checkpoints;
using static TorchSharp.torch;

namespace M3Train.Tests;

/// <summary>
/// The golden reference folder: <c>M3_GOLDEN_DIR</c> when set, else the project's copy in the test output.
/// Cases are discovered from its files, so another folder with the same layout checks the same things.
/// </summary>
internal static class GoldenFolder
{
    public static string Path =>
        Environment.GetEnvironmentVariable("M3_GOLDEN_DIR") is { Length: > 0 } dir
            ? dir
            : System.IO.Path.Combine(AppContext.BaseDirectory, "Fixtures", "m3-golden");

    public static string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Subfolders that are checkpoints (have a config.json).</summary>
    public static IEnumerable<string> CheckpointFolders() =>
        Directory.Exists(Path)
            ? Directory.GetDirectories(Path).Where(d => System.IO.File.Exists(System.IO.Path.Combine(d, "config.json")))
                .Select(System.IO.Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)
            : [];

    /// <summary>The checkpoint the m3_* references were computed with: the safetensors one (same weights as the .bin one).</summary>
    public static string ReferenceCheckpoint =>
        CheckpointFolders().Select(File).First(d => System.IO.File.Exists(System.IO.Path.Combine(d, "model.safetensors")));

    public static Dictionary<string, Tensor> Tensors(string name) =>
        SafetensorsFile.Read(File(name)).ToDictionary(kv => kv.Key, kv => kv.Value);
}
