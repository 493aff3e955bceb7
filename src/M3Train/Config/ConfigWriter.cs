using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace M3Train.Config;

/// <summary>Writes a resolved config back out with the keys users write (snake_case), for the log and the run folder.</summary>
public static class ConfigWriter
{
    public static JsonNode? ToJson(object? value)
    {
        switch (value)
        {
            case null: return null;
            case string s: return JsonValue.Create(s);
            case bool b: return JsonValue.Create(b);
            case Enum e: return JsonValue.Create(ConfigBinder.SnakeCase(e.ToString()));
            case int or long or float or double or decimal:
                return JsonNode.Parse(Convert.ToString(value, CultureInfo.InvariantCulture)!.Replace("∞", "1e999"));
            case IDictionary d:
                var obj = new JsonObject();
                foreach (DictionaryEntry kv in d) obj[(string)kv.Key] = ToJson(kv.Value);
                return obj;
            case IEnumerable list:
                var arr = new JsonArray();
                foreach (var item in list) arr.Add(ToJson(item));
                return arr;
            default:
                var section = new JsonObject();
                foreach (var p in ConfigBinder.Keys(value.GetType()))
                    section[ConfigBinder.KeyOf(p)] = ToJson(p.GetValue(value));
                return section;
        }
    }

    /// <summary>YAML that <see cref="ConfigParser"/> reads back to the same values.</summary>
    public static string ToYaml(object config)
    {
        var sb = new StringBuilder();
        Write(sb, ToJson(config), 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, JsonNode? node, int indent)
    {
        string pad = new(' ', indent);
        if (node is JsonObject obj)
        {
            foreach (var (key, child) in obj)
            {
                if (child is JsonObject o && o.Count > 0)
                {
                    sb.Append(pad).Append(key).Append(":\n");
                    Write(sb, child, indent + 2);
                }
                else
                    sb.Append(pad).Append(key).Append(": ").Append(Inline(child)).Append('\n');
            }
        }
    }

    static string Inline(JsonNode? node) => node switch
    {
        null => "null",
        JsonArray a => "[" + string.Join(", ", a.Select(Inline)) + "]",
        JsonObject o => "{" + string.Join(", ", o.Select(kv => $"{kv.Key}: {Inline(kv.Value)}")) + "}",
        JsonValue v when v.TryGetValue(out string? s) => Quote(s!),
        _ => node.ToJsonString(),
    };

    static string Quote(string s) => System.Text.Json.JsonSerializer.Serialize(s);
}
