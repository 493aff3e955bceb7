using M3Train.Build;
using TorchSharp;
using Xunit;

namespace M3Train.Tests.Build;

public class TorchNativeLoadTests
{
    [Fact]
    public void LoadedLibTorchSharpIsThePatchedCopy()
    {
        Assert.False(string.IsNullOrEmpty(torch.__version__));
        string mapped = File.ReadAllLines("/proc/self/maps")
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
            .First(p => p.EndsWith("libLibTorchSharp.so", StringComparison.Ordinal));
        Assert.StartsWith(AppContext.BaseDirectory.TrimEnd('/'), mapped);
        Assert.Equal((ushort)2, ElfVersionPatcher.VersionFlags(File.ReadAllBytes(mapped), "GLIBCXX_3.4.32"));
    }
}
