using M3Train.Eval;
using M3Train.Tests.Checkpoints;
using M3Train.Tests.Export;
using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Eval;

[Collection(SerilogCaptureCollection.Name)]
public class CorpusEncodingCacheTests
{
    static TextEncodings Sample() => new(2, EncodingParts.All, 3, [1, 2, 3, -4, 5.5f, 6],
        [new Dictionary<int, float> { [7] = 0.5f, [9] = 1.25f }, new Dictionary<int, float>()],
        2, [0, 3, 4], [1, 0, 0, 1, 0.6f, 0.8f, -1, 0]);

    [Fact]
    public void RoundTripsEveryPartExactly()
    {
        using var folder = new TempFolder();
        var cache = new CorpusEncodingCache(folder.Path, "k");
        var original = Sample();
        cache.Save(original);
        var loaded = cache.TryLoad(2, EncodingParts.All)!;
        Assert.Equal(original.Dense, loaded.Dense);
        Assert.Equal(original.Lexical.Select(m => m.OrderBy(kv => kv.Key)), loaded.Lexical.Select(m => m.OrderBy(kv => kv.Key)));
        Assert.Equal(original.ColbertOffsets, loaded.ColbertOffsets);
        Assert.Equal(original.ColbertData, loaded.ColbertData);
        Assert.Equal((original.DenseDim, original.ColbertDim), (loaded.DenseDim, loaded.ColbertDim));
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp"));
    }

    [Fact]
    public void AFileWithFewerPartsOrAnotherCorpusSizeIsNotUsed()
    {
        using var folder = new TempFolder();
        var cache = new CorpusEncodingCache(folder.Path, "k");
        var dense = Sample();
        cache.Save(new TextEncodings(2, EncodingParts.Dense, 3, dense.Dense, [], 0, [], []));
        Assert.NotNull(cache.TryLoad(2, EncodingParts.Dense));
        Assert.Null(cache.TryLoad(2, EncodingParts.Dense | EncodingParts.Colbert));
        Assert.Null(cache.TryLoad(3, EncodingParts.Dense));
        Assert.Null(new CorpusEncodingCache(folder.Path, "other").TryLoad(2, EncodingParts.Dense));
    }

    [Fact]
    public void ATruncatedFileIsReportedAndIgnored()
    {
        using var folder = new TempFolder();
        using var log = new LogCapture();
        var cache = new CorpusEncodingCache(folder.Path, "k");
        cache.Save(Sample());
        byte[] bytes = File.ReadAllBytes(cache.Path);
        File.WriteAllBytes(cache.Path, bytes[..^5]);
        Assert.Null(cache.TryLoad(2, EncodingParts.All));
        Assert.Contains(log.Warnings, w => w.Contains(cache.Path) && w.Contains("do not read back"));
    }
}
