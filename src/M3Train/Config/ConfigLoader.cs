namespace M3Train.Config;

/// <summary>Loads a run config: file (YAML or JSON) → <c>--set</c> overrides → typed, validated record.</summary>
public static class ConfigLoader
{
    public static T Load<T>(string path, IEnumerable<string>? overrides = null) where T : new()
    {
        var root = ConfigOverrides.Apply(ConfigParser.ParseFile(path), overrides ?? []);
        return ConfigBinder.Bind<T>(root, path);
    }

    public static T FromText<T>(string text, string source, IEnumerable<string>? overrides = null) where T : new()
    {
        var parsed = source.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? ConfigParser.ParseJson(text, source) : ConfigParser.ParseYaml(text, source);
        return ConfigBinder.Bind<T>(ConfigOverrides.Apply(parsed, overrides ?? []), source);
    }
}
