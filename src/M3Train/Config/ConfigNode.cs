namespace M3Train.Config;

/// <summary>
/// A parsed config document before binding: a mapping, a sequence or a scalar, with the line it came from
/// (0 when unknown, e.g. a --set override), so errors can point at the file and line.
/// </summary>
public abstract record ConfigNode(int Line)
{
    /// <summary>Where a node came from when not from the file itself (a <c>--set</c> override).</summary>
    public string? Origin { get; init; }

    /// <summary>
    /// Follows the keys of <paramref name="path"/> down from this node as far as mappings hold them: the deepest node
    /// reached, and whether every key was found.
    /// </summary>
    public (ConfigNode Node, bool Complete) Follow(IEnumerable<string> path)
    {
        var node = this;
        foreach (string key in path)
        {
            if (node is not Map map || !map.Entries.TryGetValue(key, out var child)) return (node, false);
            node = child;
        }
        return (node, true);
    }

    public sealed record Map(IReadOnlyDictionary<string, ConfigNode> Entries, int Line) : ConfigNode(Line);
    public sealed record Seq(IReadOnlyList<ConfigNode> Items, int Line) : ConfigNode(Line);
    /// <summary>A scalar as written; <see cref="Quoted"/> is true for quoted strings (never a number or null).</summary>
    public sealed record Scalar(string? Value, bool Quoted, int Line) : ConfigNode(Line);
}
