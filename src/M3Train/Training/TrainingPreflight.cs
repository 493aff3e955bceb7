using M3Train.Checkpoints;
using M3Train.Text;

namespace M3Train.Training;

/// <summary>
/// Checks made once at start-up, before any data is read or any step runs, of what would otherwise fail hours
/// into a run: a maximum length the model's position table cannot hold (a crash when the first long batch
/// arrives; a device-side assert on CUDA), a tokenizer with more ids than the model has embedding rows, an
/// output folder that cannot be written. Each message names the setting to change.
/// </summary>
public static class TrainingPreflight
{
    /// <summary>Creates <paramref name="outputDir"/> and makes sure files can be written into it.</summary>
    public static void CreateOutputDirectory(string outputDir)
    {
        string problem;
        try
        {
            Directory.CreateDirectory(outputDir);
            string probe = Path.Combine(outputDir, $".m3train-write-test-{Guid.NewGuid():N}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return;
        }
        catch (UnauthorizedAccessException)
        {
            problem = "cannot be written to (permission denied)";
        }
        catch (IOException e)
        {
            problem = File.Exists(outputDir) ? "is a file"
                : FileAbove(outputDir) is { } file ? $"is under {file}, which is a file"
                : $"cannot be created or written to ({e.Message})";
        }
        throw new M3TrainException($"output_dir {outputDir}: {problem}; choose another output_dir (--set output_dir=...).");
    }

    /// <summary>The tokenizer of <paramref name="checkpoint"/>, checked against the model and the run's lengths.</summary>
    public static XlmrTokenizer Check(RunConfig config, M3Checkpoint checkpoint)
    {
        int tokens = checkpoint.Config.MaxPositionEmbeddings - checkpoint.Config.PadTokenId - 1;
        string source = Path.Combine(checkpoint.Directory, "config.json");
        foreach (var (key, value) in new[] { ("data.query_max_len", config.Data.QueryMaxLen), ("data.passage_max_len", config.Data.PassageMaxLen) })
            if (value > tokens)
                throw new M3TrainException(
                    $"{key} {value}: the model takes at most {tokens} tokens (max_position_embeddings {checkpoint.Config.MaxPositionEmbeddings} in {source}). " +
                    $"Lower {key} to {tokens}, or grow the model's position table with m3train extend-positions.");

        var tokenizer = LoadTokenizer(checkpoint.Directory);
        if (tokenizer.VocabSize > checkpoint.Config.VocabSize)
            throw new M3TrainException(
                $"{Path.Combine(checkpoint.Directory, XlmrTokenizer.ModelFileName)}: the tokenizer has {tokenizer.VocabSize} ids but the model's vocab_size is " +
                $"{checkpoint.Config.VocabSize} ({source}); ids past it would crash the embedding lookup. Use the tokenizer the model was trained with.");
        return tokenizer;
    }

    static XlmrTokenizer LoadTokenizer(string directory)
    {
        try
        {
            return XlmrTokenizer.FromFolder(directory);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
        {
            throw new M3TrainException(e.Message, e);
        }
    }

    static string? FileAbove(string path)
    {
        for (string? p = Path.GetDirectoryName(Path.GetFullPath(path)); p is not null; p = Path.GetDirectoryName(p))
            if (File.Exists(p)) return p;
        return null;
    }
}
