using System.Reflection;
using TorchSharp;

namespace M3Train.Runtime;

/// <summary>Facts fixed at build time (the TorchBackend MSBuild property).</summary>
public static class BuildInfo
{
    public static string TorchBackend { get; } =
        typeof(BuildInfo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "unknown";

    /// <summary>
    /// Whether the TorchSharp.dll in use went through the build's lifetime patch (build/TorchSharpLifetimePatcher/):
    /// its methods that call libtorch are unoptimized, so the Scalars and Tensors they pass stay alive until libtorch
    /// returns. As shipped, a garbage collection on another thread can free a temporary Scalar mid-call.
    /// </summary>
    public static bool TorchSharpArgumentsKeptAlive { get; } =
        (typeof(torch.Tensor).GetMethod(nameof(torch.Tensor.mul), [typeof(Scalar)])?.MethodImplementationFlags
         & MethodImplAttributes.NoOptimization) != 0;

    /// <summary>Null when <see cref="TorchSharpArgumentsKeptAlive"/>, else a warning that says what to do.</summary>
    public static string? TorchSharpPatchWarning() => TorchSharpArgumentsKeptAlive ? null :
        $"TorchSharp.dll (in {AppContext.BaseDirectory}) is as shipped: a garbage collection during a libtorch call can " +
        "free a temporary Scalar (\"Unknown scalar type\", wrong values, crashes). Build through M3Train's " +
        "build/TorchNativePatch.targets, which patches the copy in every output.";
}
