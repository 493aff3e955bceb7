using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace M3Train.Config;

/// <summary>Reads YAML or JSON text into a <see cref="ConfigNode"/> tree (JSON is YAML, but JSON files get JSON's own errors).</summary>
public static class ConfigParser
{
    /// <summary>Deeper nesting is refused before the document is built: the tree is built recursively, and a crafted file could overflow the stack.</summary>
    const int MaxDepth = 64;
    const long MaxFileBytes = 16L << 20;

    public static ConfigNode ParseFile(string path)
    {
        if (Directory.Exists(path)) throw new M3TrainException($"{path}: is a folder; --config takes a YAML or JSON file.");
        if (!File.Exists(path)) throw new M3TrainException($"{path}: config file not found.");
        string text;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxFileBytes) throw new M3TrainException($"{path}: {length} bytes; a run config is a few kilobytes (at most {MaxFileBytes >> 20} MiB is read).");
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new M3TrainException($"{path}: cannot read ({e.Message}).", e);
        }
        var root = Path.GetExtension(path).Equals(".json", StringComparison.OrdinalIgnoreCase) ? ParseJson(text, path) : ParseYaml(text, path);
        if (root is ConfigNode.Map { Entries.Count: 0 } or ConfigNode.Scalar { Value: null or "" })
            throw new M3TrainException($"{path}: the config file is empty; a run config sets at least model.path, data.files and output_dir (start from configs/quickstart.yaml).");
        return root;
    }

    public static ConfigNode ParseYaml(string text, string source)
    {
        var stream = new YamlStream();
        try
        {
            CheckShape(text, source);
            stream.Load(new StringReader(text));
        }
        catch (YamlException e) { throw new M3TrainException($"{source}:{e.Start.Line}: invalid YAML: {e.InnerException?.Message ?? e.Message}"); }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            // YamlDotNet's scanner fails this way on some malformed text (a '[' opening a line inside a block mapping).
            throw new M3TrainException($"{source}: invalid YAML ({e.Message}); look for an unclosed '[', '{{' or quote.", e);
        }
        if (stream.Documents.Count == 0) return new ConfigNode.Map(new Dictionary<string, ConfigNode>(), 1);
        return FromYaml(stream.Documents[0].RootNode, source, "");
    }

    /// <summary>
    /// Reads the text as a stream of parser events (no recursion) before it is loaded: one document, nested at
    /// most <see cref="MaxDepth"/> levels, no aliases (which would let a small file expand exponentially).
    /// </summary>
    static void CheckShape(string text, string source)
    {
        var parser = new Parser(new StringReader(text));
        int depth = 0, documents = 0;
        while (parser.MoveNext())
        {
            var at = parser.Current!.Start;
            switch (parser.Current)
            {
                case DocumentStart when ++documents > 1:
                    throw new ConfigException(source, (int)at.Line, "", "holds more than one YAML document (a second '---'); a config is one document.");
                case MappingStart or SequenceStart when ++depth > MaxDepth:
                    throw new ConfigException(source, (int)at.Line, "", $"nested more than {MaxDepth} levels deep.");
                case MappingEnd or SequenceEnd:
                    depth--;
                    break;
                case AnchorAlias:
                    throw new ConfigException(source, (int)at.Line, "", "YAML aliases and anchors are not supported in configs.");
            }
        }
    }

    /// <summary>Parses the value side of a <c>--set key=value</c>: YAML flow syntax, so <c>[a, b]</c> and <c>{x: 1}</c> work.</summary>
    public static ConfigNode ParseValue(string value, string source)
    {
        if (value.Length == 0) return new ConfigNode.Scalar("", true, 0);
        try
        {
            var node = ParseYaml("v: " + value, source);
            return StripLines(((ConfigNode.Map)node).Entries["v"]);
        }
        catch (M3TrainException)
        {
            // Not YAML (e.g. an instruction such as "Represent this: "): take it as the literal string.
            return new ConfigNode.Scalar(value, true, 0);
        }
    }

    static ConfigNode StripLines(ConfigNode n) => n switch
    {
        ConfigNode.Map m => new ConfigNode.Map(m.Entries.ToDictionary(e => e.Key, e => StripLines(e.Value)), 0),
        ConfigNode.Seq s => new ConfigNode.Seq(s.Items.Select(StripLines).ToList(), 0),
        ConfigNode.Scalar c => c with { Line = 0 },
        _ => n,
    };

    static ConfigNode FromYaml(YamlNode node, string source, string path)
    {
        int line = (int)node.Start.Line;
        switch (node)
        {
            case YamlMappingNode map:
                var entries = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
                foreach (var (k, v) in map.Children)
                {
                    if (k is not YamlScalarNode keyNode)
                        throw new ConfigException(source, (int)k.Start.Line, path, "a key is a list or a mapping; config keys are plain names.");
                    string key = keyNode.Value ?? "";
                    string child = path.Length == 0 ? key : $"{path}.{key}";
                    if (!entries.TryAdd(key, FromYaml(v, source, child)))
                        throw new ConfigException(source, (int)k.Start.Line, child, "key appears twice.");
                }
                return new ConfigNode.Map(entries, line);
            case YamlSequenceNode seq:
                return new ConfigNode.Seq(seq.Children.Select((c, i) => FromYaml(c, source, $"{path}[{i}]")).ToList(), line);
            case YamlScalarNode s:
                bool quoted = s.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded;
                return new ConfigNode.Scalar(s.Value, quoted, line);
            default:
                throw new ConfigException(source, line, path, "YAML aliases and anchors are not supported in configs.");
        }
    }

    public static ConfigNode ParseJson(string text, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new M3TrainException($"{source}:{(e.LineNumber ?? 0) + 1}: invalid JSON: {e.Message}"); }
        using (doc) return FromJson(doc.RootElement, source, "");
    }

    static ConfigNode FromJson(JsonElement e, string source, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var entries = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject())
                {
                    string child = path.Length == 0 ? p.Name : $"{path}.{p.Name}";
                    if (!entries.TryAdd(p.Name, FromJson(p.Value, source, child)))
                        throw new ConfigException(source, 0, child, "key appears twice.");
                }
                return new ConfigNode.Map(entries, 0);
            case JsonValueKind.Array:
                return new ConfigNode.Seq(e.EnumerateArray().Select((c, i) => FromJson(c, source, $"{path}[{i}]")).ToList(), 0);
            case JsonValueKind.String:
                return new ConfigNode.Scalar(e.GetString(), true, 0);
            case JsonValueKind.Null:
                return new ConfigNode.Scalar(null, false, 0);
            default:
                return new ConfigNode.Scalar(e.GetRawText(), false, 0);
        }
    }
}
