using System.Runtime.InteropServices;

namespace M3Train.Runtime;

/// <summary>
/// A build with <c>TorchBackend=external</c> carries no libtorch: the machine's (a PyTorch install's torch/lib)
/// must be on the loader path. Without it TorchSharp fails on first use with a long load trace, and where a NuGet
/// cache exists it even copies a CPU libtorch next to the program; checking first gives one clear message instead.
/// </summary>
public static class ExternalLibTorch
{
    public const string Hint =
        "put a PyTorch install's torch/lib on LD_LIBRARY_PATH, e.g. " +
        "export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib (see docs/GPU.md)";

    /// <summary>Null when libtorch can be loaded (or the build brings its own), else what is wrong and what to do.</summary>
    public static string? Problem()
    {
        if (BuildInfo.TorchBackend != "external") return null;
        string library = OperatingSystem.IsWindows() ? "torch_cpu.dll" : OperatingSystem.IsMacOS() ? "libtorch_cpu.dylib" : "libtorch_cpu.so";
        try
        {
            NativeLibrary.Load(library);
            return null;
        }
        catch (DllNotFoundException)
        {
            return $"this m3train was built with TorchBackend=external and found no libtorch ({library} is not on the library path); {Hint}.";
        }
    }
}
