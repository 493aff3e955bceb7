// Keeps TorchSharp's native arguments alive through the libtorch calls made with them.
//
// TorchSharp 0.107 passes a Scalar's or a Tensor's native handle to libtorch as an IntPtr and does nothing to keep
// the managed owner alive during the call. Once the JIT has optimized the calling method, the owner is dead as soon
// as its handle is loaded, so a garbage collection started by another thread during the call can run the owner's
// finalizer, which frees the native object libtorch is about to read. Numbers are the common case: `t * 2.0`,
// `a + b` (alpha = 1) and `t.ne(0)` all build a temporary Scalar. Seen as "Unknown scalar type", "Expected false to
// be true" from c10::Scalar::toLong, or a segfault, in about 1 test-suite run in 6, and reproduced at about 25 errors
// per million scalar operations under a thread that forces collections.
//
// The fix marks NoOptimization | NoInlining (2 bytes of a MethodDef row) on every TorchSharp method that calls a
// P/Invoke, and, transitively, on every method that calls a marked method that is not public: such helpers
// (hstack(IntPtr[]), the lambdas handed to libtorch as callbacks) receive bare handles, so the method that owns the
// Tensors is the one whose frame must stay. "Calls" is call, callvirt, newobj, ldftn and ldvirtftn, to the MethodDef
// itself, to a MemberRef of a generic type's instantiation or to a MethodSpec (CallGraph). Unoptimized code reports
// `this` and the arguments as live for the whole method, so the handles' owners outlive the native call whatever
// the caller did; not inlining keeps that frame. Nothing else changes: the IL, the signatures and the other methods
// are as shipped.
//
// The rule was checked on one file, TorchSharp 0.107.0's lib/net8.0/TorchSharp.dll: the marked set was reviewed and
// the stress test in TorchSharpLifetimePatchTests passes with it. Any other input is refused rather than patched
// unchecked; README "Development" says how to check a new TorchSharp and move the pins.
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Security.Cryptography;

namespace M3Train.Build;

public static class TorchSharpLifetimePatcher
{
    /// <summary>The assembly version of the TorchSharp the patch was checked on.</summary>
    public static readonly Version CheckedVersion = new(0, 107, 0, 0);

    /// <summary>SHA-256 of that package's lib/net8.0/TorchSharp.dll, as shipped.</summary>
    public const string PackageSha256 = "4cdbefe569482662109119685a31312c556ce24e67b6daf75eb16cc62264809c";

    /// <summary>SHA-256 of the same file once patched: what every output must hold.</summary>
    public const string PatchedSha256 = "ce0397bb36d35b6675531e8cb8dec780b46960e2732239ae8756aef5a13c5727";

    const string Pins = "build/TorchSharpLifetimePatcher/TorchSharpLifetimePatcher.cs";

    public static LifetimePatchReport Patch(string path)
    {
        byte[] image = File.ReadAllBytes(path);
        LifetimePatchReport report = Patch(image);
        if (report.Result == LifetimePatchResult.Patched)
        {
            // A new file renamed over the old one: never writes through a hard link into a package cache.
            string tmp = path + ".m3patch";
            File.WriteAllBytes(tmp, image);
            File.Replace(tmp, path, null);
        }
        return report;
    }

    /// <summary>Patches <paramref name="image"/> (TorchSharp.dll) in place; a file it cannot read or has not been checked on is left as it was.</summary>
    public static LifetimePatchReport Patch(byte[] image)
    {
        var changes = new List<(int At, ushort Flags)>();
        int marked = 0;
        Version? version;
        try
        {
            if (image.Length < 2 || image[0] != 'M' || image[1] != 'Z') return NotManaged("not a managed PE file");
            using var pe = new PEReader(new MemoryStream(image, writable: false));
            if (!pe.HasMetadata) return NotManaged("not a managed PE file");
            MetadataReader md = pe.GetMetadataReader();
            if (md.GetTableRowCount(TableIndex.EncLog) > 0 || md.GetTableRowCount(TableIndex.EncMap) > 0)
                return NotManaged("edit-and-continue metadata (EncLog/EncMap tables) is not supported");
            version = md.IsAssembly ? md.GetAssemblyDefinition().Version : null;

            // The ImplFlags column: 2 bytes after the 4-byte RVA of a MethodDef row.
            int table = pe.PEHeaders.MetadataStartOffset + md.GetTableMetadataOffset(TableIndex.MethodDef);
            int rowSize = md.GetTableRowSize(TableIndex.MethodDef);
            foreach (MethodDefinitionHandle method in MethodsToMark(new CallGraph(pe, md)))
            {
                marked++;
                var implFlags = (ushort)md.GetMethodDefinition(method).ImplAttributes;
                int at = table + (MetadataTokens.GetRowNumber(method) - 1) * rowSize + 4;
                if (BitConverter.ToUInt16(image, at) != implFlags)
                    throw new BadImageFormatException($"MethodDef row {MetadataTokens.GetRowNumber(method)} is not at file offset {at}");
                // NoOptimization and AggressiveOptimization may not be combined.
                var wanted = (ushort)(((MethodImplAttributes)implFlags | KeepAlive) & ~MethodImplAttributes.AggressiveOptimization);
                if (wanted != implFlags) changes.Add((at, wanted));
            }
        }
        catch (Exception e) when (e is BadImageFormatException or InvalidOperationException or ArgumentOutOfRangeException)
        {
            return NotManaged($"unreadable metadata ({e.Message})");
        }

        var patched = (byte[])image.Clone();
        foreach (var (at, flags) in changes) BitConverter.TryWriteBytes(patched.AsSpan(at), flags);
        string given = Sha256(image), result = Sha256(patched), checkedOn = CheckedVersion.ToString(3);
        // Every figure a new pin needs, so that one build gives them all.
        string found = $"(this file: version {version?.ToString() ?? "none"}, SHA-256 {given}, patched {result})";
        if (version != CheckedVersion)
            return NotChecked($"TorchSharp {version?.ToString() ?? "(no assembly version)"} is not the version the lifetime " +
                              $"patch was checked on ({checkedOn}). Use TorchSharp {checkedOn} (Directory.Packages.props), or " +
                              $"check the patch on this version as README \"Development\" says and update the pins in {Pins} {found}");
        if (result != PatchedSha256)
            return NotChecked(given == PackageSha256
                ? $"patching TorchSharp {checkedOn} no longer gives the file that was checked (patched SHA-256 " +
                  $"{PatchedSha256}): the rule or its reading of the IL changed. Check the marked methods as README " +
                  $"\"Development\" says and update {nameof(PatchedSha256)} in {Pins} {found}"
                : $"this TorchSharp.dll is not the TorchSharp {checkedOn} package's (SHA-256 {PackageSha256}) nor its " +
                  $"patched copy. Restore the package afresh (delete torchsharp/{checkedOn} from the NuGet cache), or " +
                  $"check the patch on this file as README \"Development\" says and update the pins in {Pins} {found}");
        patched.CopyTo(image, 0);
        return new LifetimePatchReport
        {
            Result = changes.Count > 0 ? LifetimePatchResult.Patched : LifetimePatchResult.AlreadyPatched,
            Marked = marked,
            Changed = changes.Count,
        };
    }

    public const MethodImplAttributes KeepAlive = MethodImplAttributes.NoOptimization | MethodImplAttributes.NoInlining;

    /// <summary>
    /// The methods to mark: every method that calls a P/Invoke of the module, and every caller of a marked method
    /// that is not public (a helper such as <c>hstack(IntPtr[])</c> receives bare handles, so the method that owns
    /// the Tensors is the one whose frame must stay), transitively.
    /// </summary>
    public static HashSet<MethodDefinitionHandle> MethodsToMark(CallGraph graph)
    {
        MetadataReader md = graph.Metadata;
        var callees = md.MethodDefinitions.ToDictionary(m => m, graph.Callees);
        bool Is(MethodDefinitionHandle m, MethodAttributes mask, MethodAttributes value) =>
            (md.GetMethodDefinition(m).Attributes & mask) == value;
        var marked = callees.Where(kv => kv.Value.Any(c => Is(c, MethodAttributes.PinvokeImpl, MethodAttributes.PinvokeImpl)))
            .Select(kv => kv.Key).ToHashSet();
        for (bool grew = true; grew;)
        {
            var more = callees.Where(kv => !marked.Contains(kv.Key)
                    && kv.Value.Any(c => marked.Contains(c) && !Is(c, MethodAttributes.MemberAccessMask, MethodAttributes.Public)))
                .Select(kv => kv.Key).ToList();
            marked.UnionWith(more);
            grew = more.Count > 0;
        }
        return marked;
    }

    static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    static LifetimePatchReport NotManaged(string reason) => new() { Result = LifetimePatchResult.NotManaged, Reason = reason };

    static LifetimePatchReport NotChecked(string reason) => new() { Result = LifetimePatchResult.NotChecked, Reason = reason };
}
