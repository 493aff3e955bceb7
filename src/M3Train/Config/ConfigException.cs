namespace M3Train.Config;

/// <summary>A config error: names the file (and line when known) and the dotted key path.</summary>
public sealed class ConfigException : M3TrainException
{
    public string KeyPath { get; }

    public ConfigException(string source, int line, string keyPath, string problem)
        : base($"{source}{(line > 0 ? $":{line}" : "")}: {(keyPath.Length > 0 ? $"'{keyPath}': " : "")}{problem}")
    {
        KeyPath = keyPath;
    }
}
