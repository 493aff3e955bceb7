using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using M3Train.Data;

namespace M3Train.Cli;

/// <summary>
/// Reads the inputs of <c>encode</c> and <c>score</c>, naming file and line in every error, and, for training rows
/// given to them, the verbs those rows are for.
/// </summary>
public static class InputRecords
{
    /// <summary>
    /// Texts of a file, each with its line: JSONL rows with a string <c>text</c> field when the file ends in .jsonl or its first
    /// line is such a row (blank lines skipped), otherwise one text per line (every line, empty ones too).
    /// </summary>
    public static IEnumerable<(long Line, string Text)> Texts(string path)
    {
        bool jsonl = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || FirstLineIsTextRow(path);
        foreach (var (line, text) in Lines(path))
        {
            if (!jsonl)
            {
                yield return (line, text);
                continue;
            }
            if (string.IsNullOrWhiteSpace(text)) continue;
            var row = Parse(path, line, text);
            if (IsGroupRow(row) && !row.TryGetProperty("text", out _))
                throw new M3TrainException(RowShapes.Mismatch($"{path}:{line}", RowKind.Group, "encode", "one text a line, or {\"text\"} rows"));
            yield return (line, StringField(row, "text", path, line));
        }
    }

    /// <summary>(query, passage) pairs from JSONL rows <c>{"query": ..., "passage": ...}</c>, each with its line; blank lines skipped.</summary>
    public static IEnumerable<(long Line, string Query, string Passage)> Pairs(string path)
    {
        foreach (var (line, text) in Lines(path))
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            var row = Parse(path, line, text);
            if (!row.TryGetProperty("passage", out _) && (IsGroupRow(row) || row.TryGetProperty("text", out _)))
                throw new M3TrainException(RowShapes.Mismatch($"{path}:{line}", IsGroupRow(row) ? RowKind.Group : RowKind.Text, "score",
                    "{\"query\",\"passage\"} pairs (one passage a row)"));
            yield return (line, StringField(row, "query", path, line), StringField(row, "passage", path, line));
        }
    }

    /// <summary>A fine-tuning row: a query (or anchor) with its positives, under either name.</summary>
    static bool IsGroupRow(JsonElement row) =>
        (row.TryGetProperty("query", out _) || row.TryGetProperty("anchor", out _)) && (row.TryGetProperty("pos", out _) || row.TryGetProperty("positive", out _));

    static bool FirstLineIsTextRow(string path)
    {
        foreach (var (_, text) in Lines(path))
        {
            try
            {
                using var doc = JsonDocument.Parse(text);
                return doc.RootElement.ValueKind == JsonValueKind.Object
                    && doc.RootElement.TryGetProperty("text", out var field) && field.ValueKind == JsonValueKind.String;
            }
            catch (JsonException)
            {
                return false;
            }
        }
        return false;
    }

    static IEnumerable<(long Line, string Text)> Lines(string path)
    {
        using var reader = new Utf8LineReader(File.OpenRead(path));
        while (reader.TryReadLine(out var bytes))
        {
            if (!Utf8.IsValid(bytes)) throw new M3TrainException($"{path}:{reader.LineNumber}: invalid UTF-8");
            yield return (reader.LineNumber, Encoding.UTF8.GetString(bytes));
        }
    }

    static JsonElement Parse(string path, long line, string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new M3TrainException($"{path}:{line}: expected a JSON object.");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new M3TrainException($"{path}:{line}: not valid JSON ({e.Message}).", e);
        }
    }

    static string StringField(JsonElement row, string name, string path, long line) =>
        row.TryGetProperty(name, out var field) && field.ValueKind == JsonValueKind.String
            ? field.GetString()!
            : throw new M3TrainException($"{path}:{line}: expected a string field \"{name}\".");
}
