using M3Train.Config;
using M3Train.Data;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>The reference's per-dataset options: per-file batch and group sizes, and a cap on the rows of each dataset.</summary>
public class DatasetOverridesTests
{
    const long Seed = 42;

    static DataConfig Sample(string dir) => new() { Files = [dir], TrainGroupSize = 4, QueryMaxLen = 64, PassageMaxLen = 128, BinEdges = [], BatchSizes = [4] };

    /// <summary>Both kinds of plan: shuffled lists, and seeded permutations (every dataset above data.shuffle_in_memory_rows).</summary>
    static int InMemoryRows(bool permuted) => permuted ? 0 : new DataConfig().ShuffleInMemoryRows;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AFileOrAFolderSetsTheBatchAndGroupSizeOfItsDatasets(bool permuted)
    {
        using var folder = new DataTestFolder();
        string dir = folder.CopySampleData();
        var config = Sample(dir) with
        {
            ShuffleInMemoryRows = InMemoryRows(permuted),
            DatasetOverrides =
            [
                new DatasetOverride { Path = Path.Combine(dir, "nq.jsonl"), BatchSize = 2, TrainGroupSize = 3 },
                new DatasetOverride { Path = Path.Combine(dir, "sts.jsonl"), BatchSize = 3 },
                new DatasetOverride { Path = Path.Combine(dir, "Banking77Classification-no_in_batch_neg"), TrainGroupSize = 6 },
            ],
        };
        using var data = DataTestFolder.Load(config);
        var plan = BatchPlan.Create(data, Seed, 0, 1);
        IEnumerable<PlannedBatch> Of(string name) => plan.Batches.Where(b => data.Datasets[b.Dataset].Name.EndsWith(name, StringComparison.Ordinal));

        Assert.All(Of("nq.jsonl"), b => Assert.Equal((2, 3), (b.ReplicaBatchSize, b.GroupSize)));
        Assert.Equal(5, Of("nq.jsonl").Count());                                                  // 10 rows in batches of 2
        Assert.All(Of("sts.jsonl"), b => Assert.Equal(3, b.ReplicaBatchSize));                   // not halved: the file says 3
        Assert.All(Of("Banking77Classification.jsonl"), b => Assert.Equal((2, 6), (b.ReplicaBatchSize, b.GroupSize)));
        Assert.All(Of("toy_train_data1.jsonl"), b => Assert.Equal((4, 4), (b.ReplicaBatchSize, b.GroupSize)));

        // The overrides are part of the plan's identity: a resumed run with other ones is refused.
        using var plain = DataTestFolder.Load(Sample(dir) with { ShuffleInMemoryRows = InMemoryRows(permuted) });
        Assert.NotEqual(BatchPlan.Create(plain, Seed, 0, 1).Signature, plan.Signature);
    }

    [Fact]
    public void AnEntryThatCoversNoDataFileIsAnError()
    {
        using var folder = new DataTestFolder();
        string dir = folder.CopySampleData();
        using var data = DataTestFolder.Load(Sample(dir) with
        {
            DatasetOverrides = [new DatasetOverride { Path = Path.Combine(dir, "nq.json"), BatchSize = 2 }],
        });
        var e = Assert.Throws<M3TrainException>(() => BatchPlan.Create(data, Seed, 0, 1));
        Assert.Contains("data.dataset_overrides", e.Message);
        Assert.Contains("nq.json", e.Message);
    }

    [Fact]
    public void EntriesAreCheckedWhenTheConfigIsRead()
    {
        const string Yaml = "model: {path: m}\ndata:\n  dataset_overrides:\n    - {path: a.jsonl, batch_size: 0}\n";
        var range = Assert.Throws<ConfigException>(() => ConfigLoader.FromText<RunConfig>(Yaml, "run.yaml"));
        Assert.Contains("data.dataset_overrides[0].batch_size", range.Message);
        var empty = Assert.Throws<ConfigException>(() => ConfigLoader.FromText<RunConfig>(Yaml.Replace(", batch_size: 0", ""), "run.yaml"));
        Assert.Contains("neither batch_size nor train_group_size", empty.Message);
        var bound = ConfigLoader.FromText<RunConfig>(Yaml.Replace("batch_size: 0", "train_group_size: 2"), "run.yaml");
        Assert.Equal(2, bound.Data.DatasetOverrides.Single().TrainGroupSize);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxExamplesKeepsTheSameSeededRowsOfEachDatasetInEveryEpoch(bool permuted)
    {
        using var folder = new DataTestFolder();
        string Row(int i) => $$"""{"query": "q{{i}}", "pos": ["p{{i}}"], "neg": ["n{{i}}"]}""";
        string path = folder.Write("rows.jsonl", string.Join("\n", Enumerable.Range(0, 40).Select(Row)));
        var config = new DataConfig { Files = [path], TrainGroupSize = 2, BinEdges = [], BatchSizes = [2], MaxExamplesPerDataset = 10,
            ShuffleInMemoryRows = InMemoryRows(permuted) };
        using var data = DataTestFolder.Load(config);

        HashSet<int> Rows(long seed, int epoch) => BatchPlan.Create(data, seed, epoch, 1).Batches.SelectMany(b => b.Rows).ToHashSet();
        var first = Rows(Seed, 0);
        Assert.Equal(10, first.Count);
        Assert.All(first, row => Assert.InRange(row, 0, 39));
        Assert.Equal(first, Rows(Seed, 1));
        Assert.NotEqual(first, Rows(Seed + 1, 0));
        Assert.Equal(5, BatchPlan.Create(data, Seed, 0, 1).Count);                                // batches of 2 from 10 rows

        using var all = DataTestFolder.Load(config with { MaxExamplesPerDataset = null });
        Assert.Equal(40, BatchPlan.Create(all, Seed, 0, 1).Batches.Sum(b => b.Rows.Length));
    }
}
