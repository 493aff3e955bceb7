using System.Text.Json;
using System.Text.Unicode;

namespace M3Train.Data;

/// <summary>
/// Parses one JSONL line into a <see cref="TrainRow"/>, or says why it cannot: invalid UTF-8, malformed
/// JSON, not an object, or a field of the wrong type. Unknown fields are ignored; <c>null</c> counts as absent.
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
                problem = "not a JSON object";
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
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            string name = reader.GetString()!;
            reader.Read();
            switch (name)
            {
                case "query": query = ReadString(ref reader, name, ref problem); break;
                case "text": text = ReadString(ref reader, name, ref problem); break;
                case "prompt": prompt = ReadString(ref reader, name, ref problem); break;
                case "type": type = ReadString(ref reader, name, ref problem); break;
                case "pos": pos = ReadStrings(ref reader, name, ref problem); break;
                case "neg": neg = ReadStrings(ref reader, name, ref problem); break;
                case "pos_scores": posScores = ReadFloats(ref reader, name, ref problem); break;
                case "neg_scores": negScores = ReadFloats(ref reader, name, ref problem); break;
                default: reader.Skip(); break;
            }
            if (problem is not null) return null;
        }
        if (query is null && text is null)
        {
            problem = "missing \"query\"";
            return null;
        }
        if (query is not null) text = null;
        return new TrainRow
        {
            Query = query, Text = text, Prompt = prompt, Type = type,
            Positives = pos ?? [], Negatives = neg ?? [], PositiveScores = posScores, NegativeScores = negScores,
        };
    }

    static string? ReadString(ref Utf8JsonReader reader, string name, ref string? problem)
    {
        if (reader.TokenType == JsonTokenType.String) return reader.GetString();
        if (reader.TokenType != JsonTokenType.Null) problem = $"\"{name}\" is {Describe(reader.TokenType)}, not a string";
        reader.Skip();
        return null;
    }

    static string[]? ReadStrings(ref Utf8JsonReader reader, string name, ref string? problem)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            problem = $"\"{name}\" is {Describe(reader.TokenType)}, not a list of strings";
            reader.Skip();
            return null;
        }
        var items = new List<string>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.String)
            {
                problem = $"\"{name}\"[{items.Count}] is {Describe(reader.TokenType)}, not a string";
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
