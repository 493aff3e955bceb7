using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace M3Train.Text;

/// <summary>
/// The tokenizer files a model folder carries, copied into every folder the project writes (checkpoints, ONNX
/// exports, extended checkpoints). <c>tokenizer_config.json</c> is written in the form both transformers 4.x and
/// 5.x load: 5.x saves the extra special tokens as a list under <c>extra_special_tokens</c>, which 4.x reads as a
/// mapping of names to tokens and fails on (<c>'list' object has no attribute 'keys'</c>); 4.x's list key,
/// <c>additional_special_tokens</c>, is one that 5.x still reads and renames.
/// </summary>
public static class TokenizerFiles
{
    public const string ConfigFile = "tokenizer_config.json";

    /// <summary>The files copied when present: the SentencePiece model (the one the project's tokenizer reads), then HF's.</summary>
    public static readonly IReadOnlyList<string> Names = ["sentencepiece.bpe.model", "tokenizer.json", ConfigFile, "special_tokens_map.json"];

    const string ExtraSpecialTokens = "extra_special_tokens";
    const string AdditionalSpecialTokens = "additional_special_tokens";

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Copies those of <paramref name="names"/> (default <see cref="Names"/>) that <paramref name="source"/> has into <paramref name="target"/> (replacing files there); returns the names copied.</summary>
    public static IReadOnlyList<string> Copy(string source, string target, IEnumerable<string>? names = null)
    {
        var copied = new List<string>();
        foreach (string name in names ?? Names)
        {
            string from = Path.Combine(source, name);
            if (!File.Exists(from)) continue;
            string to = Path.Combine(target, name);
            if (name == ConfigFile && Portable(File.ReadAllText(from)) is { } portable)
                File.WriteAllText(to, portable);
            else
                File.Copy(from, to, overwrite: true);
            copied.Add(name);
        }
        return copied;
    }

    /// <summary>Rewrites the tokenizer_config.json at <paramref name="path"/> in the portable form, when it needs it.</summary>
    public static void MakePortable(string path)
    {
        if (File.Exists(path) && Portable(File.ReadAllText(path)) is { } portable) File.WriteAllText(path, portable);
    }

    /// <summary>
    /// <paramref name="json"/> with a list-valued <c>extra_special_tokens</c> moved to <c>additional_special_tokens</c>
    /// (merged, in order, without repeats), keys sorted as transformers writes them; null when there is nothing to
    /// change or the text is not a JSON object (it is then copied as it is, for the tokenizer loader to judge).
    /// </summary>
    public static string? Portable(string json)
    {
        JsonObject? root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
        if (root?[ExtraSpecialTokens] is not JsonArray extra) return null;
        var tokens = new List<JsonNode?>();
        if (root[AdditionalSpecialTokens] is JsonArray additional) tokens.AddRange(additional.Select(t => t?.DeepClone()));
        foreach (var token in extra)
            if (!tokens.Any(t => JsonNode.DeepEquals(t, token))) tokens.Add(token?.DeepClone());
        root.Remove(ExtraSpecialTokens);
        root[AdditionalSpecialTokens] = new JsonArray([.. tokens]);
        var sorted = new JsonObject();
        foreach (var (key, value) in root.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList())
        {
            root.Remove(key);
            sorted[key] = value;
        }
        return sorted.ToJsonString(Indented) + "\n";
    }
}
