using System.Text.Json;
using System.Text.Unicode;

namespace M3Train.Data;

/// <summary>
/// Parses one JSONL line into a <see cref="TrainRow"/>, or says why it cannot: invalid UTF-8, malformed
/// JSON, not an object, or a field of the wrong type (a problem with the row's shape also gives the shape expected,
/// <see cref="RowShapes.GroupSchema"/>). Unknown fields are ignored; <c>null</c> counts as absent. sentence-transformers'
/// names are read as m3train's (<c>anchor</c> → query, <c>positive</c> → pos, <c>negative</c> → neg), and pos and neg
/// may each be one string instead of a list.
/// </summary>
public static class JsonlRowParser
{
    /// <summary>The row, or null with <paramref name="problem"/> set.</summary>
    public static TrainRow? Parse(ReadOnlySpan<byte> line, out string? problem)
    {
        problem = null;
        if (!Utf8.IsValid(line))
        {
            problem = "invalid UTF-8";
            return null;
        }
        try
        {
            var reader = new Utf8JsonReader(line, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                problem = Expected("not a JSON object");
                return null;
            }
            var row = ReadObject(ref reader, out problem);
            if (row is not null && reader.Read())
            {
                problem = "malformed JSON: more than one value on the line";
                return null;
            }
            return row;
        }
        catch (JsonException e)
        {
            problem = $"malformed JSON: {e.Message}";
            return null;
        }
    }

    static TrainRow? ReadObject(ref Utf8JsonReader reader, out string? problem)
    {
        problem = null;
        string? query = null, prompt = null, type = null, text = null;
        string[]? pos = null, neg = null;
        float[]? posScores = null, negScores = null;
        var named = new Dictionary<string, string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            string name = reader.GetString()!;
            reader.Read();
            if (Canonical(name) is { } canonical && reader.TokenType != JsonTokenType.Null)
            {
                if (named.TryGetValue(canonical, out string? first) && first != name)
                {
                    problem = $"both \"{first}\" and \"{name}\" (the same field under m3train's and sentence-transformers' names): keep one";
                    return null;
                }
                named[canonical] = name;
            }
            switch (name)
            {
                case "query" or "anchor": query = ReadString(ref reader, name, ref problem); break;
                case "text": text = ReadString(ref reader, name, ref problem); break;
                case "prompt": prompt = ReadString(ref reader, name, ref problem); break;
                case "type": type = ReadString(ref reader, name, ref problem); break;
                case "pos" or "positive": pos = ReadStrings(ref reader, name, ref problem); break;
                case "neg" or "negative": neg = ReadStrings(ref reader, name, ref problem); break;
                case "pos_scores": posScores = ReadFloats(ref reader, name, ref problem); break;
                case "neg_scores": negScores = ReadFloats(ref reader, name, ref problem); break;
                default: reader.Skip(); break;
            }
            if (problem is not null) return null;
        }
        if (query is null && text is null)
        {
            problem = Expected("missing \"query\"");
            return null;
        }
        if (query is not null) text = null;
        return new TrainRow
        {
            Query = query, Text = text, Prompt = prompt, Type = type,
            Positives = pos ?? [], Negatives = neg ?? [], PositiveScores = posScores, NegativeScores = negScores,
        };
    }

    /// <summary>m3train's name of a field that sentence-transformers names otherwise, or null for every other field.</summary>
    public static string? Canonical(string name) => name switch
    {
        "query" or "anchor" => "query",
        "pos" or "positive" => "pos",
        "neg" or "negative" => "neg",
        _ => null,
    };

    /// <summary>A problem with the row's shape, and the shape expected.</summary>
    static string Expected(string problem) => $"{problem}; expected {RowShapes.GroupSchema}";

    static string? ReadString(ref Utf8JsonReader reader, string name, ref string? problem)
    {
        if (reader.TokenType == JsonTokenType.String) return reader.GetString();
        if (reader.TokenType != JsonTokenType.Null) problem = Expected($"\"{name}\" is {Describe(reader.TokenType)}, not a string");
        reader.Skip();
        return null;
    }

    /// <summary>A list of strings, or one string as a list of one.</summary>
    static string[]? ReadStrings(ref Utf8JsonReader reader, string name, ref string? problem)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType == JsonTokenType.String) return [reader.GetString()!];
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            problem = Expected($"\"{name}\" is {Describe(reader.TokenType)}, not a string or a list of strings");
            reader.Skip();
            return null;
        }
        var items = new List<string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.String)
            {
                problem = Expected($"\"{name}\"[{items.Count}] is {Describe(reader.TokenType)}, not a string");
                return null;
            }
            items.Add(reader.GetString()!);
        }
        return [.. items];
    }

    static float[]? ReadFloats(ref Utf8JsonReader reader, string name, ref string? problem)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            problem = $"\"{name}\" is {Describe(reader.TokenType)}, not a list of numbers";
            reader.Skip();
            return null;
        }
        var items = new List<float>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number)
            {
                problem = $"\"{name}\"[{items.Count}] is {Describe(reader.TokenType)}, not a number";
                return null;
            }
            items.Add((float)reader.GetDouble());
        }
        return [.. items];
    }

    static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "a list",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}
