using System.Text;
using M3Train.Data;
using Parquet.Serialization;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>
/// Data that would train wrongly or exhaust memory is a bad row like any other: non-finite teacher scores, rows
/// above data.max_row_bytes (skipped without being held whole), and a row index that does not check out.
/// </summary>
public sealed class HostileDataTests
{
    const string Good = """{"query": "q one", "pos": ["p one"], "neg": ["n one"]}""";

    static DataConfig Config(string path, BadRowPolicy policy = BadRowPolicy.Error) =>
        new() { Files = [path], OnBadRow = policy, TrainGroupSize = 2, CacheTokenCounts = false, MaxRowBytes = 4096 };

    [Fact]
    public async Task NonFiniteParquetScoresAreBadRowsNamingTheRow()
    {
        using var folder = new DataTestFolder();
        string path = Path.Combine(folder.Path, "scores.parquet");
        await ParquetSerializer.SerializeAsync(new[]
        {
            new ParquetTestRow { Query = "q one", Pos = ["p"], Neg = ["n"], PosScores = [1f], NegScores = [0.5f] },
            new ParquetTestRow { Query = "q two", Pos = ["p"], Neg = ["n"], PosScores = [float.NaN], NegScores = [0.5f] },
            new ParquetTestRow { Query = "q three", Pos = ["p"], Neg = ["n"], PosScores = [1f], NegScores = [float.NegativeInfinity] },
        }, path, cancellationToken: TestContext.Current.CancellationToken);
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path)));
        Assert.Contains($"{path}: row 2: \"pos_scores\"[0] is NaN, not a finite number", e.Message);
        using var data = DataTestFolder.Load(Config(path, BadRowPolicy.Skip));
        Assert.Equal(1, data.Datasets[0].Count);
        Assert.Equal(2, data.SkippedRows[path].Count);
    }

    [Fact]
    public async Task AParquetFileWithDamagedMetadataIsAnErrorNamingIt()
    {
        using var folder = new DataTestFolder();
        string path = Path.Combine(folder.Path, "damaged.parquet");
        await ParquetSerializer.SerializeAsync(new[] { new ParquetTestRow { Query = "q", Pos = ["p"], Neg = ["n"] } }, path,
            cancellationToken: TestContext.Current.CancellationToken);
        byte[] bytes = File.ReadAllBytes(path);
        bytes.AsSpan(bytes.Length - 8 - 24, 24).Fill(0xFF);   // the end of the footer's metadata, before its length and "PAR1"
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path)));
        Assert.StartsWith($"{path}: ", e.Message);
    }

    [Fact]
    public void AParquetFooterCountingMoreThanItHoldsIsRefusedInsteadOfReadForever()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "hostile", "parquet-footer-list-count.parquet");
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path)));
        Assert.Equal($"{path}: not a readable Parquet file (a list of 2097151 elements in the 141 bytes left of its metadata)", e.Message);
    }

    [Fact]
    public void ALineAboveMaxRowBytesIsABadRowAndItsNeighboursStillRead()
    {
        using var folder = new DataTestFolder();
        string huge = $$"""{"query": "{{new string('x', 100_000)}}", "pos": ["p"], "neg": ["n"]}""";
        string path = folder.Write("long.jsonl", string.Join("\n", Good, huge, Good.Replace("one", "two")) + "\n");
        var e = Assert.Throws<M3TrainException>(() => DataTestFolder.Load(Config(path)));
        Assert.Contains($"{path}:2: the row is {huge.Length} bytes, more than data.max_row_bytes 4096", e.Message);
        using var data = DataTestFolder.Load(Config(path, BadRowPolicy.Skip));
        Assert.Equal(["q one", "q two"], Enumerable.Range(0, 2).Select(i => data.Datasets[0].ReadRow(i).Query));
    }

    [Fact]
    public void TheLineReaderPassesOverALongLineThroughABoundedBuffer()
    {
        byte[] text = Encoding.UTF8.GetBytes("short\n" + new string('y', 5_000_000) + "\r\nafter\n" + new string('z', 3000));
        using var reader = new Utf8LineReader(new MemoryStream(text), maxLineBytes: 1000);
        var seen = new List<(string Text, bool TooLong, long Length, long Start)>();
        while (reader.TryReadLine(out var line))
            seen.Add((Encoding.UTF8.GetString(line), reader.LineTooLong, reader.LineLength, reader.LineStart));
        Assert.Equal([("short", false, 5L, 0L), ("", true, 5_000_001L, 6L), ("after", false, 5L, 5_000_008L), ("", true, 3000L, 5_000_014L)], seen);
    }

    [Fact]
    public void ADamagedRowIndexIsRebuiltNotTrusted()
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("rows.jsonl", string.Join("\n", Good, Good.Replace("one", "two")) + "\n");
        var config = Config(path) with { CacheTokenCounts = true };
        using (var first = DataTestFolder.Load(config)) Assert.False(first.Files[0].FromCache);
        string cache = Directory.GetFiles(Path.Combine(folder.Path, RowIndexStore.FolderName)).Single();
        byte[] bytes = File.ReadAllBytes(cache);

        using (var second = DataTestFolder.Load(config)) Assert.True(second.Files[0].FromCache);
        foreach (var damage in new Func<byte[], byte[]>[] { b => b[..^1], b => [], b => { var c = (byte[])b.Clone(); c[^40] ^= 0x10; return c; } })
        {
            File.WriteAllBytes(cache, damage(bytes));
            using var again = DataTestFolder.Load(config);
            Assert.False(again.Files[0].FromCache);
            Assert.Equal(bytes, File.ReadAllBytes(cache));
        }
    }
}
