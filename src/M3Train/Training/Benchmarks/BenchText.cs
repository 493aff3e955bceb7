using System.Text.Json.Nodes;
using M3Train.Text;

namespace M3Train.Training.Benchmarks;

/// <summary>Tokenizer throughput on the real text of <see cref="BenchSettings.Data"/> (<see cref="TokenizerBenchmark"/>).</summary>
public static class BenchText
{
    public static JsonObject RunTokenize(BenchSettings s)
    {
        var tokenizer = LoadTokenizer(s.Tokenizer);
        var files = TextFiles(s.Data);
        var corpus = TokenizerBenchmark.BuildCorpus(files);
        var r = TokenizerBenchmark.Run(tokenizer, corpus, s.Threads ?? 1, Math.Max(1, s.Steps));
        return new JsonObject
        {
            ["files"] = new JsonArray([.. files.Select(f => (JsonNode)f)]),
            ["texts"] = r.Texts,
            ["chars"] = r.Chars,
            ["tokens"] = r.Tokens,
            ["best_round_seconds"] = r.Seconds,
            ["rounds"] = Math.Max(1, s.Steps),
            ["threads"] = r.Threads,
            ["tokens_per_second"] = r.Tokens / r.Seconds,
            ["tokens_per_second_per_core"] = r.TokensPerSecondPerCore,
            ["chars_per_second_per_core"] = r.CharsPerSecondPerCore,
            ["chars_per_token"] = r.CharsPerToken,
        };
    }

    public static XlmrTokenizer LoadTokenizer(string dir)
    {
        try
        {
            return XlmrTokenizer.FromFolder(dir);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or InvalidDataException)
        {
            throw new M3TrainException($"--tokenizer {dir}: {e.Message}", e);
        }
    }

    /// <summary>The JSONL files of the given files and folders (folders searched recursively), in name order.</summary>
    static List<string> TextFiles(IReadOnlyList<string> paths)
    {
        var files = new List<string>();
        foreach (string path in paths)
        {
            if (File.Exists(path)) files.Add(path);
            else if (Directory.Exists(path))
                files.AddRange(Directory.EnumerateFiles(path, "*.jsonl", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
            else throw new M3TrainException($"--data {path}: no such file or folder.");
        }
        if (files.Count == 0) throw new M3TrainException($"--data {string.Join(", ", paths)}: no .jsonl files.");
        return files;
    }
}
