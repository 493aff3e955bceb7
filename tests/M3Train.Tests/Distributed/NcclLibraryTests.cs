using System.Runtime.InteropServices;
using M3Train.Distributed;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Distributed;

/// <summary>What of the NCCL backend can be checked without a GPU: finding the library, the ABI's sizes and enum values.</summary>
public class NcclLibraryTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), $"m3-nccl-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    static Func<string, string?> Variables(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    string Touch(string relative)
    {
        string path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, []);
        return path;
    }

    [Fact]
    public void TheUniqueIdIsNcclsOpaque128Bytes()
    {
        Assert.Equal(128, Marshal.SizeOf<NcclUniqueId>());
        Assert.Equal(128, System.Runtime.CompilerServices.Unsafe.SizeOf<NcclUniqueId>());
        var bytes = Enumerable.Range(0, 128).Select(i => (byte)(255 - i)).ToArray();
        Assert.Equal(bytes, NcclUniqueId.FromArray(bytes).ToArray());
        Assert.Contains("has 128 bytes; the rendezvous held 3", Assert.Throws<DistributedException>(() => NcclUniqueId.FromArray([1, 2, 3])).Message);
    }

    [Fact]
    public void DtypesAndReductionsMapToNcclsEnumValues()
    {
        // ncclDataType_t and ncclRedOp_t as nccl.h numbers them.
        Assert.Equal(7, NcclTypes.DataType(ScalarType.Float32));
        Assert.Equal(9, NcclTypes.DataType(ScalarType.BFloat16));
        Assert.Equal(6, NcclTypes.DataType(ScalarType.Float16));
        Assert.Equal(8, NcclTypes.DataType(ScalarType.Float64));
        Assert.Equal(2, NcclTypes.DataType(ScalarType.Int32));
        Assert.Equal(4, NcclTypes.DataType(ScalarType.Int64));
        Assert.Equal(1, NcclTypes.DataType(ScalarType.Byte));
        Assert.Equal(0, NcclTypes.DataType(ScalarType.Int8));
        Assert.Equal(0, NcclTypes.Operation(ReduceOp.Sum));
        Assert.Equal(4, NcclTypes.Operation(ReduceOp.Average));
        Assert.Contains("NCCL has no data type for ComplexFloat32", Assert.Throws<ArgumentException>(() => NcclTypes.DataType(ScalarType.ComplexFloat32)).Message);
    }

    [Fact]
    public void FindsTheWheelsNcclBesideTorchLib()
    {
        string torchLib = Path.Combine(_root, "site-packages", "torch", "lib");
        Directory.CreateDirectory(torchLib);
        string nccl = Touch("site-packages/nvidia/nccl/lib/libnccl.so.2");
        var candidates = NcclLibrary.Candidates(Variables(), [torchLib]);
        Assert.Equal(Path.Combine(torchLib, "libnccl.so.2"), candidates[0]);
        Assert.Equal(nccl, candidates[1]);
        Assert.Equal(nccl, candidates.First(File.Exists));
    }

    [Fact]
    public void SearchesLdLibraryPathAfterLibTorch()
    {
        var candidates = NcclLibrary.Candidates(Variables(("LD_LIBRARY_PATH", "/opt/a:/opt/b")), ["/t/torch/lib"]);
        Assert.Equal(["/t/torch/lib/libnccl.so.2", "/t/nvidia/nccl/lib/libnccl.so.2", "/opt/a/libnccl.so.2", "/nvidia/nccl/lib/libnccl.so.2", "/opt/b/libnccl.so.2"], candidates);
    }

    [Fact]
    public void NcclLibraryNamesOneFileThatMustExist()
    {
        string nccl = Touch("custom/libnccl.so.2");
        Assert.Equal([nccl], NcclLibrary.Candidates(Variables(("NCCL_LIBRARY", nccl)), ["/t/torch/lib"]));
        var error = Assert.Throws<DistributedException>(() => NcclLibrary.Candidates(Variables(("NCCL_LIBRARY", "/nowhere/libnccl.so.2")), []));
        Assert.Equal("NCCL_LIBRARY=/nowhere/libnccl.so.2 does not exist; point it at libnccl.so.2, or unset it to search beside libtorch.", error.Message);
    }

    [Fact]
    public void AFileThatIsNotALibraryIsReportedByPath()
    {
        string fake = Touch("fake/libnccl.so.2");
        var error = Assert.Throws<DistributedException>(() => NcclLibrary.Load(Variables(("NCCL_LIBRARY", fake)), []));
        Assert.StartsWith($"{fake} exists but cannot be loaded as NCCL", error.Message);
    }

    [Fact]
    public void WithoutNcclTheErrorSaysWhereItLookedAndWhatToSet()
    {
        if (NativeLibrary.TryLoad("libnccl.so.2", out var found))
        {
            NativeLibrary.Free(found);
            Assert.Skip("this machine has an NCCL on its library path, so the not-found error cannot be shown");
        }
        string torchLib = Path.Combine(_root, "torch", "lib");
        var error = Assert.Throws<DistributedException>(() => NcclLibrary.Load(Variables(), [torchLib]));
        Assert.Contains($"NCCL (libnccl.so.2) was not found: looked for {Path.Combine(torchLib, "libnccl.so.2")}", error.Message);
        Assert.Contains("and on the system library path", error.Message);
        Assert.Contains("set NCCL_LIBRARY=/path/to/libnccl.so.2", error.Message);
    }

    [Fact]
    public void LibTorchsFoldersAreReadFromTheProcessMaps()
    {
        _ = ones(1);   // libtorch is loaded by now
        var folders = NcclLibrary.LoadedLibTorchDirectories();
        Assert.Contains(folders, f => File.Exists(Path.Combine(f, "libtorch_cpu.so")) || File.Exists(Path.Combine(f, "libtorch.so")));
    }
}
