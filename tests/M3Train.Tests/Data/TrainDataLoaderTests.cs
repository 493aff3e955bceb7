using M3Train.Data;
using M3Train.Text;
using Parquet.Serialization;
using TorchSharp;
using Xunit;

namespace M3Train.Tests.Data;

public class TrainDataLoaderTests
{
    const long Seed = 1234;

    static DataConfig Config(params string[] files) => new()
    {
        Files = [.. files],
        TrainGroupSize = 4,
        QueryMaxLen = 32,
        PassageMaxLen = 64,
        BinEdges = [48],
        BatchSizes = [2, 2],
        ShuffleRatio = 0.5,
        PrefetchBatches = 2,
    };

    /// <summary>Everything a batch holds, as one comparable string.</summary>
    static string Describe(TrainBatch b) => string.Join(" | ",
        $"{b.Epoch}/{b.Step} d{b.Dataset} bin{b.Bin} g{b.GroupSize} nib{b.NoInBatchNegatives}",
        string.Join(',', b.Rows),
        $"{b.Queries.BatchSize}x{b.Queries.SequenceLength}:{string.Join(',', b.Queries.InputIds)}:{string.Join(',', b.Queries.AttentionMask)}",
        b.Passages is null ? "-" : $"{b.Passages.BatchSize}x{b.Passages.SequenceLength}:{string.Join(',', b.Passages.InputIds)}:{string.Join(',', b.Passages.AttentionMask)}",
        b.TeacherScores is null ? "-" : string.Join(',', b.TeacherScores));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ResumingFromASavedPositionYieldsTheUninterruptedBatches(bool permuted)
    {
        using var folder = new DataTestFolder();
        using var data = DataTestFolder.Load(Config(folder.CopySampleData()) with { ShuffleInMemoryRows = permuted ? 0 : 1 << 20 });
        List<string> uninterrupted;
        int stepsPerEpoch;
        using (var loader = new TrainDataLoader(data, DataTestFolder.Tokenizer, Seed))
        {
            stepsPerEpoch = loader.StepsPerEpoch;
            uninterrupted = Enumerable.Range(0, stepsPerEpoch + 5).Select(_ => Describe(loader.Next())).ToList();
        }
        Assert.Equal(uninterrupted.Count, uninterrupted.Distinct().Count());

        // Stop inside the first epoch and right at its end, save the position as JSON, restore it.
        foreach (int k in new[] { 3, stepsPerEpoch })
        {
            string saved;
            using (var loader = new TrainDataLoader(data, DataTestFolder.Tokenizer, Seed))
            {
                var firstK = Enumerable.Range(0, k).Select(_ => Describe(loader.Next())).ToList();
                Assert.Equal(uninterrupted[..k], firstK);
                saved = loader.Position.ToJson();
            }
            var state = LoaderState.FromJson(saved);
            Assert.Equal(k == stepsPerEpoch ? (1, 0) : (0, k), (state.Epoch, state.Step));
            using var resumed = new TrainDataLoader(data, DataTestFolder.Tokenizer, Seed, resumeFrom: state);
            var rest = Enumerable.Range(0, uninterrupted.Count - k).Select(_ => Describe(resumed.Next())).ToList();
            Assert.Equal(uninterrupted[k..], rest);
        }
    }

    [Fact]
    public void RestoringOntoOtherDataOrSeedFails()
    {
        using var folder = new DataTestFolder();
        string dir = folder.CopySampleData();
        using var data = DataTestFolder.Load(Config(dir));
        LoaderState state;
        using (var loader = new TrainDataLoader(data, DataTestFolder.Tokenizer, Seed)) { loader.Next(); state = loader.Position; }
        Assert.Throws<M3TrainException>(() => new TrainDataLoader(data, DataTestFolder.Tokenizer, Seed + 1, resumeFrom: state));
        using var other = DataTestFolder.Load(Config(dir) with { BatchSizes = [3, 3] });
        Assert.Throws<M3TrainException>(() => new TrainDataLoader(other, DataTestFolder.Tokenizer, Seed, resumeFrom: state));
        // Data grown past data.shuffle_in_memory_rows is planned the other way: a position in the old plan does not apply.
        using var permuted = DataTestFolder.Load(Config(dir) with { ShuffleInMemoryRows = 0 });
        Assert.Throws<M3TrainException>(() => new TrainDataLoader(permuted, DataTestFolder.Tokenizer, Seed, resumeFrom: state));
    }

    [Fact]
    public async Task JsonlAndParquetGiveIdenticalBatches()
    {
        using var folder = new DataTestFolder();
        string jsonl = Path.Combine(DataTestFolder.RepoRoot, "data", "train", "nq.jsonl");
        string jsonlCopy = Path.Combine(folder.Path, "jsonl", "nq.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(jsonlCopy)!);
        File.Copy(jsonl, jsonlCopy);
        string parquet = Path.Combine(folder.Path, "parquet", "nq.parquet");
        Directory.CreateDirectory(Path.GetDirectoryName(parquet)!);
        var rows = File.ReadLines(jsonl).Where(l => l.Length > 0).Select(l => JsonlRowParser.Parse(System.Text.Encoding.UTF8.GetBytes(l), out _)!)
            .Select(r => new ParquetTestRow
            {
                Query = r.Query, Pos = [.. r.Positives], Neg = [.. r.Negatives],
                PosScores = r.PositiveScores?.ToList(), NegScores = r.NegativeScores?.ToList(), Prompt = r.Prompt, Type = r.Type,
            }).ToList();
        await ParquetSerializer.SerializeAsync(rows, parquet, cancellationToken: TestContext.Current.CancellationToken);

        using var fromJsonl = DataTestFolder.Load(Config(jsonlCopy));
        using var fromParquet = DataTestFolder.Load(Config(parquet));
        using var a = new TrainDataLoader(fromJsonl, DataTestFolder.Tokenizer, Seed);
        using var b = new TrainDataLoader(fromParquet, DataTestFolder.Tokenizer, Seed);
        Assert.Equal(a.StepsPerEpoch, b.StepsPerEpoch);
        Assert.True(a.StepsPerEpoch > 0);
        for (int i = 0; i < 2 * a.StepsPerEpoch; i++)
            Assert.Equal(Describe(a.Next()), Describe(b.Next()));
    }

    [Fact]
    public void SecondLoadTakesTokenCountsFromTheCacheBesideTheData()
    {
        using var folder = new DataTestFolder();
        string dir = folder.CopySampleData();
        using var first = DataTestFolder.Load(Config(dir));
        Assert.All(first.Files, f => Assert.False(f.FromCache));
        Assert.All(first.Files, f => Assert.NotEmpty(Directory.GetFiles(Path.Combine(Path.GetDirectoryName(f.Path)!, RowIndexStore.FolderName), Path.GetFileName(f.Path) + ".*")));
        using var second = DataTestFolder.Load(Config(dir));
        Assert.All(second.Files, f => Assert.True(f.FromCache));
        Assert.Equal(first.Files.Select(f => f.Rows.ToArray()), second.Files.Select(f => f.Rows.ToArray()));
        Assert.Equal(first.Fingerprint, second.Fingerprint);

        // Another instruction changes query token counts: a new cache entry, not the old one. (It applies to rows without a
        // prompt of their own, such as toy_train_data1.jsonl's.)
        using var instructed = DataTestFolder.Load(Config(dir) with { QueryInstruction = "Represent this query: " });
        Assert.All(instructed.Files, f => Assert.False(f.FromCache));
        TrainDataset Toy(TrainData data) => data.Datasets.Single(d => d.Name.EndsWith("toy_train_data1.jsonl", StringComparison.Ordinal));
        Assert.True(Toy(instructed).Info(0).QueryTokens > Toy(first).Info(0).QueryTokens);
    }

    [Fact]
    public void BatchesHaveTheDocumentedShapesAndTensors()
    {
        using var folder = new DataTestFolder();
        using var data = DataTestFolder.Load(Config(folder.CopySampleData()));
        using var loader = new TrainDataLoader(data, DataTestFolder.Tokenizer, Seed, subBatchOfBin: _ => 3);
        for (int i = 0; i < loader.StepsPerEpoch; i++)
        {
            var batch = loader.Next();
            int b = batch.BatchSize, g = batch.GroupSize;
            Assert.Equal(b * g, batch.Passages!.BatchSize);
            Assert.True(batch.Queries.SequenceLength <= data.Config.QueryMaxLen);
            Assert.True(batch.Passages.SequenceLength <= data.Config.PassageMaxLen);
            Assert.Equal((b * g + 2) / 3, batch.PassageSubBatches!.Pieces.Count);
            Assert.Equal(b * g, batch.PassageSubBatches.Pieces.Sum(s => s.BatchSize));
            Assert.All(batch.PassageSubBatches.Pieces, s => Assert.True(s.SequenceLength <= batch.Passages.SequenceLength));
            using var tensors = batch.ToTensors(torch.CPU);
            Assert.Equal(new long[] { b, batch.Queries.SequenceLength }, tensors.QueryIds.shape);
            Assert.Equal(new long[] { b * g, batch.Passages.SequenceLength }, tensors.PassageIds!.shape);
            Assert.Equal(torch.ScalarType.Int64, tensors.PassageMask!.dtype);
            if (batch.TeacherScores is not null) Assert.Equal(b * g, batch.TeacherScores.Length);
        }
    }

    [Fact]
    public void PerBinSubBatchesHoldTheBatchsTextsSortedByLengthInPiecesOfTheBinsSize()
    {
        using var folder = new DataTestFolder();
        using var data = DataTestFolder.Load(Config(folder.CopySampleData()));
        using var loader = new TrainDataLoader(data, DataTestFolder.Tokenizer, Seed, subBatchOfBin: bin => bin == 0 ? 3 : null);
        var bins = new HashSet<int>();
        for (int i = 0; i < loader.StepsPerEpoch; i++)
        {
            var batch = loader.Next();
            bins.Add(batch.Bin);
            if (batch.Bin == 1)
            {
                Assert.Null(batch.PassageSubBatches);
                continue;
            }
            var whole = batch.Passages!;
            var sub = batch.PassageSubBatches!;
            long[] Row(EncodedBatch b, int r) => b.InputIds[(r * b.SequenceLength)..((r + 1) * b.SequenceLength)];
            int Length(long[] ids) => ids.Length - ids.Reverse().TakeWhile(id => id == XlmrTokenizer.PadId).Count();
            int[] order = sub.Order!;
            Assert.Equal(Enumerable.Range(0, whole.BatchSize), order.Order());
            Assert.All(sub.Pieces.SkipLast(1), p => Assert.Equal(3, p.BatchSize));
            var texts = sub.Pieces.SelectMany(p => Enumerable.Range(0, p.BatchSize).Select(r => Row(p, r))).ToList();
            for (int k = 0; k < texts.Count; k++)
                Assert.Equal(Row(whole, order[k])[..Length(texts[k])], texts[k][..Length(texts[k])]);
            Assert.Equal(texts.Select(Length).Order(), texts.Select(Length));
        }
        Assert.Equal(2, bins.Count);
    }

    [Fact]
    public void TextRowsBatchAsPlainTexts()
    {
        using var folder = new DataTestFolder();
        string path = folder.Write("pretrain.jsonl", string.Join("\n", Enumerable.Range(0, 9).Select(i => $$"""{"text": "document number {{i}} about rivers"}""")));
        using var data = DataTestFolder.Load(Config(path) with { BatchSizes = [4, 4] });
        using var loader = new TrainDataLoader(data, DataTestFolder.Tokenizer, Seed);
        Assert.Equal(2, loader.StepsPerEpoch);
        var batch = loader.Next();
        Assert.Null(batch.Passages);
        Assert.Equal(4, batch.BatchSize);
        Assert.Contains("document number", DataTestFolder.Tokenizer.Decode(batch.Queries.InputIds.Take(batch.Queries.SequenceLength).Select(x => (int)x)));
    }
}
