namespace M3Train.Config;

/// <summary>Overrides the config key of a property (default: the property name in snake_case).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigKeyAttribute(string key) : Attribute
{
    public string Key { get; } = key;
}
