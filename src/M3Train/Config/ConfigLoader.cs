namespace M3Train.Config;

/// <summary>Loads a run config: file (YAML or JSON) → <c>--set</c> overrides → typed, validated record.</summary>
public static class ConfigLoader
{
    public static T Load<T>(string path, IEnumerable<string>? overrides = null) where T : new()
    {
        var root = ConfigOverrides.Apply(ConfigParser.ParseFile(path), overrides ?? []);
        return ConfigBinder.Bind<T>(root, path);
    }

    /// <summary>
    /// <see cref="Load{T}(string, IEnumerable{string})"/> with <paramref name="defaults"/> (<c>section.key=value</c>, as
    /// <c>--set</c> takes them) applied to the keys that neither the file nor the overrides set, in place of the record's
    /// own defaults; <paramref name="applied"/> names the keys they set.
    /// </summary>
    public static T Load<T>(string path, IEnumerable<string>? overrides, IReadOnlyList<string> defaults, out IReadOnlyList<string> applied) where T : new()
    {
        var root = ConfigOverrides.Apply(ConfigParser.ParseFile(path), overrides ?? []);
        var missing = defaults.Where(d => !root.Follow(d[..d.IndexOf('=')].Trim().Split('.')).Complete).ToList();
        applied = missing.Select(d => d[..d.IndexOf('=')].Trim()).ToList();
        return ConfigBinder.Bind<T>(ConfigOverrides.Apply(root, missing), path);
    }

    public static T FromText<T>(string text, string source, IEnumerable<string>? overrides = null) where T : new()
    {
        var parsed = source.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? ConfigParser.ParseJson(text, source) : ConfigParser.ParseYaml(text, source);
        return ConfigBinder.Bind<T>(ConfigOverrides.Apply(parsed, overrides ?? []), source);
    }
}
