using System.Reflection;

namespace M3Train.Runtime;

/// <summary>Facts fixed at build time (the TorchBackend MSBuild property).</summary>
public static class BuildInfo
{
    public static string TorchBackend { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "unknown";
}
