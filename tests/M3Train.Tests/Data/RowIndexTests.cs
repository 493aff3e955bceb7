using System.Security.Cryptography;
using System.Text;
using M3Train.Data;
using Parquet;
using Parquet.Serialization;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>The row index: parts of any size read the same rows, a change rebuilds only its own parts, processes share the parts.</summary>
public class RowIndexTests
{
    /// <summary>About 40 KB of rows with every kind of line: bad ones, blank ones, CRLF, a byte-order mark, lines longer than a small part.</summary>
    static string Lines(int seed, int count = 400)
    {
        var random = new Random(seed);
        string Words(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => "alpha beta gamma delta river stone ünï 数字".Split(' ')[random.Next(8)]));
        var lines = new StringBuilder("\uFEFF");
        for (int i = 0; i < count; i++)
        {
            string line = (i % 37) switch
            {
                5 => "not json",
                11 => $$"""{"query": "q{{i}}", "pos": ["{{Words(3)}}"], "neg": []}""",
                17 => "",
                23 => $$"""{"query": "q{{i}}", "pos": ["{{Words(400)}}"], "neg": ["{{Words(2)}}"]}""",
                29 => $$"""{"query": "q{{i}}", "pos": ["p"], "neg": ["{{new string('x', 5000)}}"]}""",
                _ => $$"""{"query": "q{{i}} {{Words(random.Next(1, 6))}}", "pos": ["{{Words(random.Next(1, 30))}}"], "neg": ["{{Words(random.Next(1, 30))}}", "n"], "type": "{{(i % 3 == 0 ? "only_1neg" : "normal")}}"}""",
            };
            lines.Append(line).Append(i % 5 == 0 ? "\r\n" : "\n");
        }
        return lines.ToString();
    }

    static DataConfig Config(string path, int partBytes = 256 << 20) => new()
    {
        Files = [path], TrainGroupSize = 2, OnBadRow = BadRowPolicy.Skip, MaxRowBytes = 4096, IndexPartBytes = partBytes,
        BinEdges = [16, 64], BatchSizes = [4, 4, 4],
    };

    static string Describe(TrainData data) => string.Join("\n",
        data.Files.Select(f => $"{f.TotalRows} {f.RowCount} {f.Kind} {f.FirstType}"),
        string.Join("\n", data.Files.SelectMany(f => f.Rows).Select(r => r.ToString())),
        string.Join("\n", data.Files.SelectMany(f => f.BadRows).Select(b => b.ToString())),
        string.Join("\n", data.Datasets.SelectMany(d => d.ReadRows([.. Enumerable.Range(0, d.Count)]).Select(r => $"{r.Query}|{string.Join('|', r.Positives)}|{string.Join('|', r.Negatives)}"))));

    [Fact]
    public void AFileIndexedInManyPartsHasTheRowsAndBadRowsOfOnePart()
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("rows.jsonl", Lines(1));
        using var whole = DataTestFolder.Load(Config(path));
        using var parted = DataTestFolder.Load(Config(path, partBytes: 1024));
        Assert.Single(whole.Files[0].Parts);
        Assert.True(parted.Files[0].Parts.Count > 30, $"{parted.Files[0].Parts.Count} parts");
        Assert.Equal(Describe(whole), Describe(parted));
        // A row that spans several parts belongs to the part it starts in; its line numbers count across parts.
        Assert.Contains(whole.Files[0].BadRows, b => b.Location == $"{path}:30" && b.Reason.Contains("data.max_row_bytes"));
        Assert.Contains(whole.Files[0].BadRows, b => b.Location == $"{path}:12" && b.Reason.Contains("\"neg\" is empty but groups have 2 passages"));
        // A file of one part is identified by the SHA-256 of its bytes, as before the index had parts.
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))), whole.Files[0].ContentHash);
    }

    [Fact]
    public void TheIndexTakesTwelveBytesARow()
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("many.jsonl", string.Join("\n", Enumerable.Range(0, 20_000).Select(i => $$"""{"query": "q{{i}}", "pos": ["p{{i}}"], "neg": ["n{{i}}"]}""")));
        using var data = DataTestFolder.Load(Config(path));
        double perRow = (double)data.Files[0].IndexBytes / data.Files[0].RowCount;
        Assert.InRange(perRow, 12.0, 12.05);
    }

    [Fact]
    public void AChangedFileRebuildsItsOwnPartsAndADamagedPartOnlyItself()
    {
        using var folder = new DataTestFolder();
        string a = folder.Write("d/a.jsonl", Lines(2)), b = folder.Write("d/b.jsonl", Lines(3));
        var config = Config(Path.GetDirectoryName(a)!, partBytes: 4096);
        string before;
        using (var first = DataTestFolder.Load(config))
        {
            Assert.All(first.Files, f => Assert.Equal(f.Parts.Count, f.PartsBuilt));
            before = Describe(first);
        }
        File.WriteAllText(b, Lines(4));
        using (var second = DataTestFolder.Load(config))
        {
            Assert.True(second.Files[0].FromCache);
            Assert.Equal(second.Files[1].Parts.Count, second.Files[1].PartsBuilt);
        }
        File.WriteAllText(b, Lines(3));
        string damaged;
        using (var third = DataTestFolder.Load(config))
        {
            Assert.Equal(before, Describe(third));
            damaged = third.Files[0].Parts[2].Path;
        }
        byte[] bytes = File.ReadAllBytes(damaged);
        bytes[bytes.Length / 2] ^= 1;
        File.WriteAllBytes(damaged, bytes);
        using var fourth = DataTestFolder.Load(config);
        Assert.Equal(1, fourth.Files[0].PartsBuilt);
        Assert.True(fourth.Files[0].Parts[2].BuiltHere);
        Assert.Equal(before, Describe(fourth));
    }

    [Fact]
    public void LoadsRunningTogetherBuildEachPartOnceAndPlanAlike()
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("shared.jsonl", Lines(5, count: 2000));
        var config = Config(path, partBytes: 8192) with { ShuffleInMemoryRows = 0 };
        using var start = new Barrier(2);
        var loads = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            start.SignalAndWait();
            return DataTestFolder.Load(config);
        })).ToArray();
        var data = loads.Select(t => t.Result).ToArray();
        try
        {
            int parts = data[0].Files[0].Parts.Count;
            Assert.True(parts > 10, $"{parts} parts");
            Assert.Equal(parts, data.Sum(d => d.Files[0].PartsBuilt));
            Assert.Equal(data[0].Files[0].Parts.Select(p => p.Path), data[1].Files[0].Parts.Select(p => p.Path));
            Assert.Equal(Describe(data[0]), Describe(data[1]));
            var plans = data.Select(d => BatchPlan.Create(d, 9, 0, 2)).ToArray();
            Assert.True(plans[0].Permuted);
            Assert.Equal(plans[0].Signature, plans[1].Signature);
            Assert.Equal(plans[0].Batches.Select(b => string.Join(',', b.Rows)), plans[1].Batches.Select(b => string.Join(',', b.Rows)));
            Assert.Empty(Directory.GetFiles(Path.Combine(folder.Path, RowIndexStore.FolderName), "*.lock"));
            Assert.Empty(Directory.GetFiles(Path.Combine(folder.Path, RowIndexStore.FolderName), "*.tmp"));
        }
        finally
        {
            foreach (var d in data) d.Dispose();
        }
    }

    [Fact]
    public void WithoutTheCacheTheIndexIsPrivateAndLeavesNothingBehind()
    {
        using var folder = new DataTestFolder();
        string name = $"private-{Guid.NewGuid():N}.jsonl";
        string path = folder.Write(name, Lines(6));
        using var data = DataTestFolder.Load(Config(path, partBytes: 4096) with { CacheTokenCounts = false });
        Assert.True(data.Files[0].PartsBuilt > 1);
        Assert.False(Directory.Exists(Path.Combine(folder.Path, RowIndexStore.FolderName)));
        string temporary = Path.Combine(Path.GetTempPath(), "m3train-row-index");
        Assert.Empty(Directory.Exists(temporary) ? Directory.GetFiles(temporary, name + "*") : []);
        Assert.NotEmpty(Describe(data));
    }

    [Fact]
    public void IndexDirHoldsTheIndexAndAFolderThatCannotBeWrittenFallsBackToAPrivateOne()
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("data/rows.jsonl", Lines(7));
        string elsewhere = Path.Combine(folder.Path, "index");
        using (var first = DataTestFolder.Load(Config(path) with { IndexDir = elsewhere })) Assert.False(first.Files[0].FromCache);
        using (var second = DataTestFolder.Load(Config(path) with { IndexDir = elsewhere })) Assert.True(second.Files[0].FromCache);
        Assert.NotEmpty(Directory.GetFiles(elsewhere, "rows.jsonl.*.rows"));
        Assert.False(Directory.Exists(Path.Combine(folder.Path, "data", RowIndexStore.FolderName)));

        string notAFolder = folder.Write("a-file", "x");
        using var fallback = DataTestFolder.Load(Config(path) with { IndexDir = notAFolder });
        using var kept = DataTestFolder.Load(Config(path) with { IndexDir = elsewhere });
        Assert.False(fallback.Files[0].FromCache);
        Assert.Equal(Describe(kept), Describe(fallback));
    }

    [Fact]
    public async Task ParquetIsIndexedAndReadByRowGroupInAnyNumberOfParts()
    {
        using var folder = new DataTestFolder();
        string path = Path.Combine(folder.Path, "groups.parquet");
        var random = new Random(8);
        for (int group = 0; group < 12; group++)
        {
            var rows = Enumerable.Range(0, 40).Select(i => new ParquetTestRow
            {
                Query = $"query {group}/{i}", Pos = [$"positive {string.Join(' ', Enumerable.Repeat("word", random.Next(1, 40)))}"],
                Neg = i == 7 ? [] : [$"negative {i}", "another"], Type = group == 0 && i == 0 ? "symmetric_sts" : null,
            });
            await ParquetSerializer.SerializeAsync(rows, path, new ParquetOptions { Append = group > 0 }, cancellationToken: TestContext.Current.CancellationToken);
        }
        using var whole = DataTestFolder.Load(Config(path));
        using var parted = DataTestFolder.Load(Config(path, partBytes: 1024));
        Assert.True(parted.Files[0].Parts.Count > 4, $"{parted.Files[0].Parts.Count} parts");
        Assert.Equal(Describe(whole), Describe(parted));
        Assert.Equal(12 * 39, whole.Datasets[0].Count);
        Assert.Equal("symmetric_sts", whole.Datasets[0].Type);
        Assert.Equal($"{path}: row 48", whole.Files[0].BadRows[1].Location);
        Assert.Equal("query 5/3", parted.Datasets[0].ReadRow(5 * 39 + 3).Query);
    }
}
