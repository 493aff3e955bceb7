using M3Train.Data;
using M3Train.Text;

namespace M3Train.Tests.Data;

/// <summary>A temporary folder for data tests (the row index is written beside the data), and the shipped sample data.</summary>
public sealed class DataTestFolder : IDisposable
{
    public DataTestFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "m3-data-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>The repository's root (the folder holding M3Train.sln), found from the test binary's folder.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    public static XlmrTokenizer Tokenizer { get; } = XlmrTokenizer.FromFolder(System.IO.Path.Combine(RepoRoot, "data", "models", "tiny-m3"));

    /// <summary>Copies the shipped data/train (FlagEmbedding examples) here and returns the copy's path.</summary>
    public string CopySampleData()
    {
        string source = System.IO.Path.Combine(RepoRoot, "data", "train");
        string target = System.IO.Path.Combine(Path, "train");
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            if (System.IO.Path.GetRelativePath(source, file).Split(System.IO.Path.DirectorySeparatorChar).Any(part => part.StartsWith('.'))) continue;
            string to = System.IO.Path.Combine(target, System.IO.Path.GetRelativePath(source, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        return target;
    }

    public string Write(string relativePath, string content)
    {
        string path = System.IO.Path.Combine(Path, relativePath);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public string WriteBytes(string relativePath, byte[] content)
    {
        string path = System.IO.Path.Combine(Path, relativePath);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        return path;
    }

    public static TrainData Load(DataConfig config) => TrainData.Load(config, Tokenizer);

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "M3Train.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no M3Train.sln above {AppContext.BaseDirectory}");
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
