namespace M3Train.Config;

/// <summary>Applies <c>--set section.key=value</c> overrides to a parsed config before binding.</summary>
public static class ConfigOverrides
{
    public static ConfigNode Apply(ConfigNode root, IEnumerable<string> sets)
    {
        foreach (string set in sets)
        {
            int eq = set.IndexOf('=');
            if (eq <= 0)
                throw new M3TrainException($"--set {set}: expected section.key=value.");
            string[] path = set[..eq].Trim().Split('.');
            if (path.Any(string.IsNullOrWhiteSpace))
                throw new M3TrainException($"--set {set}: empty key in '{set[..eq]}'.");
            string origin = $"--set {set}";
            var value = ConfigParser.ParseValue(set[(eq + 1)..], origin);
            root = With(root, path, 0, Mark(value, origin), origin);
        }
        return root;
    }

    static ConfigNode With(ConfigNode node, string[] path, int depth, ConfigNode value, string origin)
    {
        if (node is not ConfigNode.Map map)
            throw new ConfigException(origin, 0, string.Join('.', path[..depth]), "is not a section, so it has no keys to set.");
        var entries = new Dictionary<string, ConfigNode>(map.Entries, StringComparer.Ordinal);
        string key = path[depth];
        if (depth == path.Length - 1)
            entries[key] = value;
        else
            entries[key] = With(entries.TryGetValue(key, out var child) ? child : new ConfigNode.Map(new Dictionary<string, ConfigNode>(), 0) { Origin = origin },
                                path, depth + 1, value, origin);
        return map with { Entries = entries };
    }

    static ConfigNode Mark(ConfigNode n, string origin) => n switch
    {
        ConfigNode.Map m => new ConfigNode.Map(m.Entries.ToDictionary(e => e.Key, e => Mark(e.Value, origin)), 0) { Origin = origin },
        ConfigNode.Seq s => new ConfigNode.Seq(s.Items.Select(i => Mark(i, origin)).ToList(), 0) { Origin = origin },
        _ => n with { Origin = origin },
    };
}
