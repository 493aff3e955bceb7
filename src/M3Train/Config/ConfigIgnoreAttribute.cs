namespace M3Train.Config;

/// <summary>A property set by code, not from the config file (e.g. a value another section decides).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigIgnoreAttribute : Attribute;
