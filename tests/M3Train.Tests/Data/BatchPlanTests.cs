using M3Train.Data;
using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Data;

public class BatchPlanTests(ITestOutputHelper output)
{
    const long Seed = 42;

    /// <summary>The shipped sample data with short bins, so rows spread over several bins, and G = 4; permuted: planned as data above data.shuffle_in_memory_rows.</summary>
    static DataConfig SampleConfig(string dir, int replicaBatchSize, bool permuted = false) => new()
    {
        Files = [dir],
        TrainGroupSize = 4,
        QueryMaxLen = 64,
        PassageMaxLen = 128,
        BinEdges = [64, 128],
        BatchSizes = [replicaBatchSize, replicaBatchSize, replicaBatchSize],
        ShuffleInMemoryRows = permuted ? 0 : new DataConfig().ShuffleInMemoryRows,
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReplicasOfEveryWorldSizeShareDatasetAndBinAndSplitTheWorldSizeOneBatch(bool permuted)
    {
        using var folder = new DataTestFolder();
        string dir = folder.CopySampleData();
        const int globalBatch = 8;  // symmetric types halve the per-replica size, so 4 replicas need 2 rows each
        using var data1 = DataTestFolder.Load(SampleConfig(dir, globalBatch, permuted));
        var reference = BatchPlan.Create(data1, Seed, epoch: 0, worldSize: 1);
        Assert.Equal(permuted, reference.Permuted);
        var referenceBatches = Collate(data1, reference, worldSize: 1);
        Assert.True(reference.Count >= 3, $"the sample data should make several batches, made {reference.Count}");

        foreach (int worldSize in new[] { 2, 4 })
        {
            using var data = DataTestFolder.Load(SampleConfig(dir, globalBatch / worldSize, permuted));
            var plan = BatchPlan.Create(data, Seed, epoch: 0, worldSize);
            Assert.Equal(reference.Signature, plan.Signature);
            Assert.Equal(reference.Count, plan.Count);
            var replicaBatches = Collate(data, plan, worldSize);
            for (int step = 0; step < plan.Count; step++)
            {
                var global = reference.Batches[step];
                var batch = plan.Batches[step];
                Assert.Equal((global.Dataset, global.Bin, global.GroupSize), (batch.Dataset, batch.Bin, batch.GroupSize));
                var slices = Enumerable.Range(0, worldSize).Select(r => batch.Slice(r).ToArray()).ToList();
                Assert.Equal(slices.Sum(s => s.Length), slices.SelectMany(s => s).Distinct().Count());
                Assert.Equal(global.Rows, slices.SelectMany(s => s));

                // The collated replica batches, unpadded and concatenated, are the world-size-1 batch.
                var one = referenceBatches[step][0];
                var parts = replicaBatches[step];
                Assert.All(parts, p => Assert.Equal((one.Dataset, one.Bin, one.GroupSize, one.NoInBatchNegatives), (p.Dataset, p.Bin, p.GroupSize, p.NoInBatchNegatives)));
                Assert.Equal(Unpad(one.Queries), parts.SelectMany(p => Unpad(p.Queries)));
                Assert.Equal(Unpad(one.Passages!), parts.SelectMany(p => Unpad(p.Passages!)));
                if (one.TeacherScores is null) Assert.All(parts, p => Assert.Null(p.TeacherScores));
                else Assert.Equal(one.TeacherScores, parts.SelectMany(p => p.TeacherScores!));
            }
        }
    }

    static List<TrainBatch[]> Collate(TrainData data, BatchPlan plan, int worldSize)
    {
        var collator = new BatchCollator(data, DataTestFolder.Tokenizer, Seed);
        return plan.Batches.Select((b, step) => Enumerable.Range(0, worldSize).Select(r => collator.Collate(b, r, plan.Epoch, step)).ToArray()).ToList();
    }

    /// <summary>Each row's tokens without padding.</summary>
    static IEnumerable<long[]> Unpad(EncodedBatch batch) =>
        Enumerable.Range(0, batch.BatchSize).Select(b =>
            batch.InputIds.Skip(b * batch.SequenceLength).Take((int)batch.AttentionMask.Skip(b * batch.SequenceLength).Take(batch.SequenceLength).Sum()).ToArray());

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PlanIsAPureFunctionOfSeedAndEpochAndDropsIncompleteGlobalBatches(bool permuted)
    {
        using var folder = new DataTestFolder();
        using var data = DataTestFolder.Load(SampleConfig(folder.CopySampleData(), 3, permuted));
        var a = BatchPlan.Create(data, Seed, 0, 1);
        var b = BatchPlan.Create(data, Seed, 0, 1);
        Assert.Equal(a.Batches.Select(x => (x.Dataset, x.Bin, string.Join(',', x.Rows))), b.Batches.Select(x => (x.Dataset, x.Bin, string.Join(',', x.Rows))));
        var nextEpoch = BatchPlan.Create(data, Seed, 1, 1);
        Assert.NotEqual(a.Batches.Select(x => string.Join(',', x.Rows)), nextEpoch.Batches.Select(x => string.Join(',', x.Rows)));
        Assert.Equal(a.Count, nextEpoch.Count);

        // Every (dataset, bin) makes floor(rows / global batch) batches; the rest is dropped.
        int expectedBatches = 0, expectedDropped = 0;
        for (int d = 0; d < data.Datasets.Count; d++)
        {
            var dataset = data.Datasets[d];
            foreach (var bin in Enumerable.Range(0, dataset.Count).GroupBy(r => BatchPlan.BinOf(dataset.RowLength(r, data.Config), data.Config.BinEdges)))
            {
                int size = TrainGroupRules.BatchSize(dataset.Type, 3);
                expectedBatches += bin.Count() / size;
                expectedDropped += bin.Count() % size;
                Assert.Equal(bin.Count() / size, a.Batches.Count(x => x.Dataset == d && x.Bin == bin.Key));
            }
        }
        Assert.Equal(expectedBatches, a.Count);
        Assert.Equal(expectedDropped, a.DroppedRows);
        Assert.All(a.Batches, x => Assert.Single(x.Rows.Select(r => BatchPlan.BinOf(data.Datasets[x.Dataset].RowLength(r, data.Config), data.Config.BinEdges)).Distinct()));
        // No row comes twice in an epoch.
        var rows = a.Batches.SelectMany(x => x.Rows.Select(r => (x.Dataset, r))).ToList();
        Assert.Equal(rows.Count, rows.Distinct().Count());
    }

    [Fact]
    public void ThePermutedPlanIsAnotherOrderWithItsOwnSignature()
    {
        using var folder = new DataTestFolder();
        string dir = folder.CopySampleData();
        using var listed = DataTestFolder.Load(SampleConfig(dir, 3));
        using var permuted = DataTestFolder.Load(SampleConfig(dir, 3, permuted: true));
        var a = BatchPlan.Create(listed, Seed, 0, 1);
        var b = BatchPlan.Create(permuted, Seed, 0, 1);
        Assert.Equal(a.Count, b.Count);
        Assert.NotEqual(a.Signature, b.Signature);
        Assert.NotEqual(a.Batches.Select(x => string.Join(',', x.Rows)), b.Batches.Select(x => string.Join(',', x.Rows)));
        Assert.Equal(a.Batches.Select(x => (x.Dataset, x.Bin)).Order(), b.Batches.Select(x => (x.Dataset, x.Bin)).Order());
        // A replica's slice of a permuted batch is found alone, and is its share of the whole batch.
        var batch = BatchPlan.Create(permuted, Seed, 0, 1).Batches[1];
        Assert.Equal(b.Batches[1].Rows.Take(batch.ReplicaBatchSize), batch.Slice(0).ToArray());
    }

    [Fact]
    public void TheBinDirectoryFindsTheNthRowOfEachBin()
    {
        using var folder = new DataTestFolder();
        var random = new Random(11);
        string Words(int n) => string.Join(' ', Enumerable.Repeat("w", n));
        string path = folder.Write("lengths.jsonl", string.Join("\n", Enumerable.Range(0, 10_000).Select(i =>
            $$"""{"query": "q{{i}}", "pos": ["{{Words(random.Next(1, 120))}}"], "neg": ["n"]}""")));
        using var data = DataTestFolder.Load(new DataConfig { Files = [path], TrainGroupSize = 2, BinEdges = [10, 30, 100], BatchSizes = [1, 1, 1, 1] });
        var bins = BinDirectory.Build(data);
        var dataset = data.Datasets[0];
        var expected = Enumerable.Range(0, dataset.Count).GroupBy(r => BatchPlan.BinOf(dataset.RowLength(r, data.Config), data.Config.BinEdges))
            .ToDictionary(g => g.Key, g => g.ToArray());
        Assert.Equal(4, expected.Count);
        foreach (var (bin, rows) in expected)
        {
            Assert.Equal(rows.Length, bins.Count(0, bin));
            Assert.Equal(rows, Enumerable.Range(0, rows.Length).Select(n => bins.Select(0, bin, n)));
        }
    }

    [Fact]
    public void TypeRulesAndFolderFlagShapeTheBatches()
    {
        using var folder = new DataTestFolder();
        using var data = DataTestFolder.Load(SampleConfig(folder.CopySampleData(), 4) with { BinEdges = [], BatchSizes = [4] });
        var plan = BatchPlan.Create(data, Seed, 0, 1);
        PlannedBatch Of(string name) => plan.Batches.First(b => data.Datasets[b.Dataset].Name.EndsWith(name, StringComparison.Ordinal));

        Assert.Equal(2, Of("nli.jsonl").GroupSize);                 // only_1neg
        Assert.Equal(2, Of("sts.jsonl").ReplicaBatchSize);          // symmetric_sts halves the batch
        var banking = Of("Banking77Classification.jsonl");          // symmetric_class, in a no_in_batch_neg folder
        Assert.True(banking.NoInBatchNegatives);
        Assert.Equal(2, banking.ReplicaBatchSize);
        Assert.Equal(4, banking.GroupSize);
        Assert.True(Of("nq.jsonl").HasTeacherScores);
        Assert.False(Of("toy_train_data1.jsonl").HasTeacherScores);
        Assert.False(Of("nq.jsonl").NoInBatchNegatives);
    }

    [Fact]
    public void TokenBudgetGivesSmallerBatchesToLongerBins()
    {
        var config = new DataConfig { TrainGroupSize = 8, QueryMaxLen = 512, PassageMaxLen = 8192, TokensPerBatch = 100_000 };
        int[] sizes = BatchPlan.ReplicaBatchSizes(config, RowKind.Group);
        Assert.Equal(config.BinEdges.Count + 1, sizes.Length);
        Assert.Equal(100_000 / (500 + 8 * 500), sizes[0]);
        Assert.Equal(Math.Max(1, 100_000 / (512 + 8 * 8192)), sizes[^1]);
        Assert.True(sizes.Zip(sizes.Skip(1)).All(p => p.First >= p.Second));
        var e = Assert.Throws<M3TrainException>(() => BatchPlan.ReplicaBatchSizes(new DataConfig { BatchSizes = [8, 4] }, RowKind.Group));
        Assert.Contains("data.batch_sizes has 2 entries but data.bin_edges makes 9 bins", e.Message);
    }

    [Fact]
    public void SmallFilesOfAFolderAreMergedAndTooSmallMergesDropped()
    {
        using var folder = new DataTestFolder();
        string Row(int i) => $$"""{"query": "q{{i}}", "pos": ["p{{i}}"], "neg": ["n{{i}}"]}""";
        folder.Write("a/big.jsonl", string.Join("\n", Enumerable.Range(0, 10).Select(Row)));
        folder.Write("a/small1.jsonl", string.Join("\n", Enumerable.Range(0, 3).Select(Row)));
        folder.Write("a/small2.jsonl", string.Join("\n", Enumerable.Range(0, 4).Select(Row)));
        folder.Write("b/tiny.jsonl", Row(0));
        var config = new DataConfig { Files = [folder.Path], TrainGroupSize = 2, SmallDatasetRows = 5, DropDatasetRows = 2 };
        using var data = DataTestFolder.Load(config);
        Assert.Equal([10, 7], data.Datasets.Select(d => d.Count));
        Assert.Contains("2 small files merged", data.Datasets[1].Name);
        Assert.Equal(2, data.Datasets[1].Files.Count);
    }

    [Fact]
    public void LengthGroupingCutsPaddingVersusRandomBatches()
    {
        using var folder = new DataTestFolder();
        var random = new Random(7);
        string Words(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => "the quick brown fox jumps over the lazy dog".Split(' ')[random.Next(9)]));
        var lines = Enumerable.Range(0, 256).Select(_ =>
        {
            int length = random.Next(4) switch { 0 => random.Next(3, 20), 1 => random.Next(20, 60), 2 => random.Next(60, 150), _ => random.Next(150, 400) };
            return $$"""{"query": "{{Words(random.Next(3, 10))}}", "pos": ["{{Words(length)}}"], "neg": ["{{Words(Math.Max(3, length - random.Next(0, 8)))}}"]}""";
        });
        string path = folder.Write("mixed.jsonl", string.Join("\n", lines));
        var baseConfig = new DataConfig { Files = [path], TrainGroupSize = 2, QueryMaxLen = 512, PassageMaxLen = 512 };
        using var grouped = DataTestFolder.Load(baseConfig with { BinEdges = [32, 64, 128, 256], BatchSizes = [8, 8, 8, 8, 8] });
        using var ungrouped = DataTestFolder.Load(baseConfig with { BinEdges = [], BatchSizes = [8] });
        double groupedPadding = PaddingFraction(grouped), randomPadding = PaddingFraction(ungrouped);
        output.WriteLine($"padded share of passage tokens: length-grouped {groupedPadding:P1}, random batches {randomPadding:P1}");
        Assert.True(groupedPadding < randomPadding / 2, $"grouped {groupedPadding:P1} vs random {randomPadding:P1}");
    }

    static double PaddingFraction(TrainData data)
    {
        var plan = BatchPlan.Create(data, Seed, 0, 1);
        var collator = new BatchCollator(data, DataTestFolder.Tokenizer, Seed);
        long padded = 0, total = 0;
        for (int step = 0; step < plan.Count; step++)
        {
            var passages = collator.Collate(plan.Batches[step], 0, 0, step).Passages!;
            total += passages.InputIds.Length;
            padded += passages.AttentionMask.LongCount(m => m == 0);
        }
        return (double)padded / total;
    }
}
