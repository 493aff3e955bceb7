using M3Train.Data;
using M3Train.Tests.Training;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>A 50 MB line (it took 2.7 GB to parse and tokenize) is passed over as a bad row through a bounded buffer.</summary>
[Collection(HostMemoryCollection.Name)]
public sealed class HostileDataMemoryTests(ITestOutputHelper output)
{
    [Fact]
    public void AFiftyMegabyteLineIsSkippedWithoutBeingHeldWhole()
    {
        HostPeak.RequireMeasurable();
        using var folder = new DataTestFolder();
        string path = Path.Combine(folder.Path, "huge-line.jsonl");
        using (var writer = new StreamWriter(path))
        {
            writer.WriteLine("""{"query": "q one", "pos": ["p one"], "neg": ["n one"]}""");
            writer.Write("""{"query": "q", "pos": [""");
            for (int i = 0; i < 50; i++) writer.Write(new string('x', 1 << 20));
            writer.WriteLine("\"]}");
            writer.WriteLine("""{"query": "q two", "pos": ["p two"], "neg": ["n two"]}""");
        }
        var config = new DataConfig { Files = [path], OnBadRow = BadRowPolicy.Skip, TrainGroupSize = 2, CacheTokenCounts = false };
        double mib = HostPeak.MiB(() =>
        {
            using var data = DataTestFolder.Load(config);
            Assert.Equal(2, data.Datasets[0].Count);
            Assert.Contains("data.max_row_bytes", Assert.Single(data.SkippedRows[path]).Reason);
        });
        output.WriteLine($"50 MB line skipped; peak grew {mib:F1} MiB");
        Assert.True(mib < 128, $"{mib:F1} MiB");
    }
}
