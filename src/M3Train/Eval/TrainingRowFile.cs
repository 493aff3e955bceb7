using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;
using M3Train.Data;
using M3Train.Runtime;

namespace M3Train.Eval;

/// <summary>
/// Reads fine-tuning JSONL (<c>query</c>, <c>pos</c>, <c>neg</c>, ...) for tools that rewrite it (mining, teacher
/// scores), keeping each row's JSON object so that fields they do not touch are written back unchanged and in order.
/// Bad rows are errors naming <c>file:line</c> and the reason, as the training readers say it (<see cref="JsonlRowParser"/>).
/// </summary>
public static class TrainingRowFile
{
    static readonly JsonSerializerOptions WriteOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// All query/pos rows of <paramref name="path"/>; blank lines are skipped. Rows in sentence-transformers' names
    /// (<c>anchor</c>, <c>positive</c>, <c>negative</c>, strings or lists) are kept under m3train's, as lists, so that
    /// what the verb writes back is one training row and not both names.
    /// </summary>
    /// <param name="verb">The verb reading it, for the message when the rows are for another one (e.g. "mine").</param>
    public static IReadOnlyList<TrainingRowRecord> Read(string path, string verb = "it")
    {
        if (!File.Exists(path)) throw new M3TrainException($"{path}: file not found");
        var rows = new List<TrainingRowRecord>();
        using var reader = new Utf8LineReader(File.OpenRead(path));
        while (reader.TryReadLine(out var line))
        {
            if (line.Trim(" \t"u8).IsEmpty) continue;
            var row = JsonlRowParser.Parse(line, out string? problem)
                ?? throw new M3TrainException($"{path}:{reader.LineNumber}: {problem}");
            if (row.Kind != RowKind.Group)
                throw new M3TrainException(RowShapes.Mismatch($"{path}:{reader.LineNumber}", row.Kind, verb, "{\"query\",\"pos\"} rows (\"neg\" optional)"));
            if (row.Positives.Length == 0)
                throw new M3TrainException($"{path}:{reader.LineNumber}: \"pos\" is empty");
            rows.Add(new TrainingRowRecord(row, Canonical((JsonObject)JsonNode.Parse(line)!, row), reader.LineNumber));
        }
        if (rows.Count == 0) throw new M3TrainException($"{path}: no rows");
        return rows;
    }

    /// <summary>The row's object with sentence-transformers' names replaced by m3train's, in place, and pos/neg as lists.</summary>
    static JsonObject Canonical(JsonObject json, TrainRow row)
    {
        var fields = json.ToList();
        json.Clear();
        foreach (var (name, value) in fields)
            json[JsonlRowParser.Canonical(name) ?? name] = JsonlRowParser.Canonical(name) switch
            {
                "query" => JsonValue.Create(row.Query),
                "pos" when value is not null => StringArray(row.Positives),
                "neg" when value is not null => StringArray(row.Negatives),
                _ => value,
            };
        return json;
    }

    /// <summary>Texts of a candidate pool: JSONL with a <c>"text"</c> string per line (FlagEmbedding's format); blank lines are skipped.</summary>
    public static IReadOnlyList<string> ReadPool(string path)
    {
        if (!File.Exists(path)) throw new M3TrainException($"{path}: file not found");
        var texts = new List<string>();
        using var reader = new Utf8LineReader(File.OpenRead(path));
        while (reader.TryReadLine(out var line))
        {
            if (line.Trim(" \t"u8).IsEmpty) continue;
            if (!Utf8.IsValid(line)) throw new M3TrainException($"{path}:{reader.LineNumber}: invalid UTF-8");
            JsonNode? node;
            try
            {
                node = JsonNode.Parse(line);
            }
            catch (JsonException e)
            {
                throw new M3TrainException($"{path}:{reader.LineNumber}: malformed JSON: {e.Message}");
            }
            if (node is not JsonObject obj || !obj.TryGetPropertyValue("text", out var text) || text is not JsonValue value
                || !value.TryGetValue<string>(out string? s))
                throw new M3TrainException($"{path}:{reader.LineNumber}: expected {{\"text\": \"...\"}}");
            texts.Add(s);
        }
        if (texts.Count == 0) throw new M3TrainException($"{path}: no texts");
        return texts;
    }

    /// <summary>Writes the rows' JSON objects, one a line (UTF-8, non-ASCII written as is), through <see cref="AtomicFile"/>.</summary>
    public static void Write(string path, IEnumerable<JsonObject> rows)
    {
        using var file = AtomicFile.Create(path);
        using (var writer = new StreamWriter(file.Stream, new UTF8Encoding(false), leaveOpen: true))
            foreach (var row in rows)
            {
                writer.Write(row.ToJsonString(WriteOptions));
                writer.Write('\n');
            }
        file.Commit();
    }

    /// <summary>A JSON array of strings.</summary>
    public static JsonArray StringArray(IEnumerable<string> items) => new(items.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray());

    /// <summary>A JSON array of float32 scores, each written in its shortest round-trip form (as <c>m3train score</c> writes them).</summary>
    public static JsonArray ScoreArray(IEnumerable<float> items) => new(items.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray());
}
