namespace M3Train.Config;

/// <summary>A config section with rules beyond one key's type and range (e.g. two keys that must agree).</summary>
public interface IConfigValidatable
{
    /// <summary>Problems as (key relative to this section, message); empty when valid.</summary>
    IEnumerable<(string Key, string Message)> Validate();
}
