using System.Runtime.InteropServices;

namespace M3Train.Distributed;

/// <summary>
/// <c>libnccl.so.2</c>, loaded at run time from where a CUDA PyTorch install keeps it, and its entry points.
/// Looked for, in order: <c>NCCL_LIBRARY</c> (a file), then beside each libtorch this process loaded and each
/// <c>LD_LIBRARY_PATH</c> folder (<c>DIR/libnccl.so.2</c>, and <c>DIR/../../nvidia/nccl/lib/libnccl.so.2</c>,
/// where pip's <c>nvidia-nccl-cu*</c> wheel puts it next to <c>torch/lib</c>), then the system loader's path.
/// </summary>
public sealed unsafe class NcclLibrary
{
    public const string LibraryVariable = "NCCL_LIBRARY";
    public const string FileName = "libnccl.so.2";

    /// <summary>2.10: the first NCCL with bfloat16 and <c>ncclAvg</c>.</summary>
    public const int MinimumVersion = 21000;

    internal readonly delegate* unmanaged<int*, int> GetVersion;
    internal readonly delegate* unmanaged<NcclUniqueId*, int> GetUniqueId;
    internal readonly delegate* unmanaged<nint*, int, NcclUniqueId, int, int> CommInitRank;
    internal readonly delegate* unmanaged<nint, int> CommDestroy;
    internal readonly delegate* unmanaged<nint, int> CommAbort;
    internal readonly delegate* unmanaged<nint, int*, int> CommGetAsyncError;
    internal readonly delegate* unmanaged<int, nint> GetErrorString;
    internal readonly delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> AllReduce;
    internal readonly delegate* unmanaged<nint, nint, nuint, int, nint, nint, int> AllGather;
    internal readonly delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> Broadcast;

    NcclLibrary(nint handle, string location)
    {
        Location = location;
        GetVersion = (delegate* unmanaged<int*, int>)Export(handle, "ncclGetVersion");
        GetUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Export(handle, "ncclGetUniqueId");
        CommInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)Export(handle, "ncclCommInitRank");
        CommDestroy = (delegate* unmanaged<nint, int>)Export(handle, "ncclCommDestroy");
        CommAbort = (delegate* unmanaged<nint, int>)Export(handle, "ncclCommAbort");
        CommGetAsyncError = (delegate* unmanaged<nint, int*, int>)Export(handle, "ncclCommGetAsyncError");
        GetErrorString = (delegate* unmanaged<int, nint>)Export(handle, "ncclGetErrorString");
        AllReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Export(handle, "ncclAllReduce");
        AllGather = (delegate* unmanaged<nint, nint, nuint, int, nint, nint, int>)Export(handle, "ncclAllGather");
        Broadcast = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Export(handle, "ncclBroadcast");
        int version;
        Check(GetVersion(&version), "ncclGetVersion");
        Version = version;
        if (version < MinimumVersion)
            throw new DistributedException($"{location} is NCCL {VersionText(version)}; M3Train needs 2.10 or newer (bfloat16 and average reductions).");
    }

    /// <summary>The file that was loaded (or the bare name the system loader resolved).</summary>
    public string Location { get; }

    /// <summary>NCCL's version code, major·10000 + minor·100 + patch.</summary>
    public int Version { get; }

    public string VersionText() => VersionText(Version);

    static string VersionText(int code) => $"{code / 10000}.{code / 100 % 100}.{code % 100}";

    static readonly Lazy<NcclLibrary> Shared = new(() => Load(Environment.GetEnvironmentVariable, LoadedLibTorchDirectories()));

    /// <summary>The process's NCCL, loaded on first use.</summary>
    public static NcclLibrary Instance => Shared.Value;

    public static NcclLibrary Load(Func<string, string?> variable, IEnumerable<string> libTorchDirectories)
    {
        var candidates = Candidates(variable, libTorchDirectories);
        foreach (string path in candidates.Where(File.Exists))
        {
            if (!NativeLibrary.TryLoad(path, out nint handle))
                throw new DistributedException($"{path} exists but cannot be loaded as NCCL (a different architecture, or its CUDA libraries are missing); set {LibraryVariable} to a working {FileName}.");
            return new NcclLibrary(handle, path);
        }
        if (variable(LibraryVariable) is null && NativeLibrary.TryLoad(FileName, out nint system))
            return new NcclLibrary(system, FileName);
        throw new DistributedException(
            $"NCCL ({FileName}) was not found{(candidates.Count > 0 ? $": looked for {string.Join(", ", candidates)}" : "")}" +
            $"{(variable(LibraryVariable) is null ? " and on the system library path" : "")}. A CUDA PyTorch install ships it " +
            $"(pip's nvidia-nccl-cu12 or -cu13 package, in site-packages/nvidia/nccl/lib); set {LibraryVariable}=/path/to/{FileName}.");
    }

    /// <summary>The files to try, in order; with <c>NCCL_LIBRARY</c> set, that file alone (it must exist).</summary>
    public static IReadOnlyList<string> Candidates(Func<string, string?> variable, IEnumerable<string> libTorchDirectories)
    {
        if (variable(LibraryVariable) is { Length: > 0 } explicitPath)
        {
            if (!File.Exists(explicitPath))
                throw new DistributedException($"{LibraryVariable}={explicitPath} does not exist; point it at {FileName}, or unset it to search beside libtorch.");
            return [explicitPath];
        }
        var folders = libTorchDirectories.Concat((variable("LD_LIBRARY_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries));
        return folders
            .SelectMany(dir => new[] { Path.Combine(dir, FileName), Path.GetFullPath(Path.Combine(dir, "..", "..", "nvidia", "nccl", "lib", FileName)) })
            .Distinct()
            .ToList();
    }

    /// <summary>The folders of the libtorch libraries mapped into this process (Linux: from /proc/self/maps).</summary>
    public static IReadOnlyList<string> LoadedLibTorchDirectories()
    {
        if (!File.Exists("/proc/self/maps")) return [];
        return File.ReadLines("/proc/self/maps")
            .Select(line => line.IndexOf('/') is var at and >= 0 ? line[at..] : "")
            .Where(path => Path.GetFileName(path) is var name && (name.StartsWith("libtorch", StringComparison.Ordinal) || name.StartsWith("libc10", StringComparison.Ordinal)))
            .Select(path => Path.GetDirectoryName(path)!)
            .Distinct()
            .ToList();
    }

    public string ErrorText(int result) => Marshal.PtrToStringUTF8(GetErrorString(result)) ?? $"NCCL error {result}";

    public void Check(int result, string call)
    {
        if (result != NcclTypes.Success) throw new DistributedException($"{call} failed: {ErrorText(result)} (NCCL {result}; set NCCL_DEBUG=WARN for NCCL's own account).");
    }

    static nint Export(nint handle, string name) => NativeLibrary.TryGetExport(handle, name, out nint address)
        ? address
        : throw new DistributedException($"the loaded NCCL has no {name}: it is not NCCL 2.10 or newer.");
}
