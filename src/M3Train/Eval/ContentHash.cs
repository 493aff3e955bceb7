using System.Security.Cryptography;
using System.Text;

namespace M3Train.Eval;

/// <summary>SHA-256 fingerprints that key caches on what was read, not on paths or times.</summary>
public static class ContentHash
{
    /// <summary>Files of a checkpoint folder that decide its outputs (tokenizer model included); absent ones are skipped.</summary>
    public static IReadOnlyList<string> ModelFiles { get; } =
        ["config.json", "model.safetensors", "pytorch_model.bin", "colbert_linear.pt", "sparse_linear.pt", "sentencepiece.bpe.model"];

    /// <summary>Hex SHA-256 of one file's bytes.</summary>
    public static string OfFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Hex SHA-256 over the names and contents of <see cref="ModelFiles"/> present in <paramref name="modelDir"/>.</summary>
    public static string OfModel(string modelDir)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string name in ModelFiles)
        {
            string path = Path.Combine(modelDir, name);
            if (!File.Exists(path)) continue;
            hash.AppendData(Encoding.UTF8.GetBytes(name + "\n" + OfFile(path) + "\n"));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Hex SHA-256 of the UTF-8 of <paramref name="parts"/> joined by '|'.</summary>
    public static string OfStrings(params IEnumerable<string> parts) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("|", parts))));
}
