using System.Text;
using CsCheck;
using M3Train.Checkpoints;
using M3Train.Config;
using M3Train.Data;
using M3Train.Eval;
using M3Train.Runtime;
using M3Train.Tests.Data;
using M3Train.Tests.Training;
using M3Train.Text;
using M3Train.Training;
using Parquet.Serialization;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Fuzz;

/// <summary>
/// One fuzz campaign per reader of untrusted files: hostile variants of a valid file must be read, or refused with
/// an error naming the file (see <see cref="FuzzCampaign"/>). They run alone so the peak resident set of each
/// campaign can be held under 1 GiB above where it started: no input may make a reader allocate what it claims.
/// </summary>
[Collection(HostMemoryCollection.Name)]
public sealed class ReaderFuzzTests(ITestOutputHelper output)
{
    const double MemoryLimitMiB = 1024;

    static string Repo(params string[] parts) => Path.Combine([DataTestFolder.RepoRoot, .. parts]);

    static string TinyModel => Repo("data", "models", "tiny-m3");

    void Fuzz(string reader, string fileName, byte[] valid, Gen<Edit> edits, int iterations, Action<string> read,
        Action<FuzzCampaign>? prepare = null, Func<Exception, bool>? alsoAllowed = null)
    {
        var campaign = new FuzzCampaign(output, reader, fileName) { AlsoAllowed = alsoAllowed ?? (_ => false) };
        prepare?.Invoke(campaign);
        void Run() => campaign.Run(valid, edits, iterations, path => read(path));
        if (!OperatingSystem.IsLinux() || !MemoryProbe.ResetHostPeak())
        {
            Run();
            return;
        }
        double mib = HostPeak.MiB(Run);
        output.WriteLine($"{reader}: peak resident set grew {mib:F0} MiB");
        Assert.True(mib < MemoryLimitMiB, $"{reader}: the peak resident set grew {mib:F0} MiB");
    }

    static void CopyModel(string folder, params string[] except)
    {
        foreach (string file in Directory.GetFiles(TinyModel).Where(f => !except.Contains(Path.GetFileName(f))))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
    }

    static void LoadCheckpoint(string folder)
    {
        using var checkpoint = M3Checkpoint.Load(folder);
    }

    static void LoadData(string path, bool cache = false)
    {
        using var data = DataTestFolder.Load(new DataConfig
        {
            Files = [path], TrainGroupSize = 2, OnBadRow = BadRowPolicy.Skip, CacheTokenCounts = cache, MaxRowBytes = 1 << 16,
        });
        foreach (var dataset in data.Datasets)
            for (int i = 0; i < dataset.Count; i++) dataset.ReadRow(i);
    }

    [Fact]
    public void JsonlRows()
    {
        var lines = File.ReadLines(Repo("data", "train", "toy_train_data1.jsonl")).Take(3)
            .Append("""{"query": "q", "pos": ["p"], "neg": ["n", "m"], "pos_scores": [0.9], "neg_scores": [0.1, 0.2], "type": "normal", "prompt": "p: "}""");
        byte[] valid = Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n");
        Fuzz("jsonl", "rows.jsonl", valid, Mutations.TextEdits(valid), 400, path => LoadData(path));
    }

    [Fact]
    public async Task ParquetRows()
    {
        using var folder = new DataTestFolder();
        string path = Path.Combine(folder.Path, "rows.parquet");
        await ParquetSerializer.SerializeAsync(Enumerable.Range(0, 4).Select(i => new ParquetTestRow
        {
            Query = $"query {i}", Pos = [$"positive {i}"], Neg = [$"negative {i}", "another"], PosScores = [0.9f], NegScores = [0.1f, 0.2f],
        }), path, cancellationToken: TestContext.Current.CancellationToken);
        byte[] valid = File.ReadAllBytes(path);
        Fuzz("parquet", "rows.parquet", valid, Mutations.BinaryEdits(valid, valid.Length), 300, p => LoadData(p));
    }

    [Fact]
    public void ConfigYaml()
    {
        byte[] valid = File.ReadAllBytes(Repo("configs", "quickstart.yaml"));
        Fuzz("config-yaml", "run.yaml", valid, Mutations.TextEdits(valid), 400, path => RunConfig.Load(path));
    }

    [Fact]
    public void ConfigJson()
    {
        byte[] valid = Encoding.UTF8.GetBytes(ConfigWriter.ToJson(RunConfig.Load(Repo("configs", "quickstart.yaml")))!.ToJsonString());
        Fuzz("config-json", "run.json", valid, Mutations.TextEdits(valid), 200, path => RunConfig.Load(path));
    }

    [Fact]
    public void Safetensors()
    {
        string path = Path.Combine(Path.GetTempPath(), $"m3-fuzz-valid-{Guid.NewGuid():N}.safetensors");
        using (var scope = NewDisposeScope())
            SafetensorsFile.Write(path, [new("a.weight", randn(3, 4)), new("a.bias", zeros(4, dtype: ScalarType.Float16)),
                new("ids", arange(6, dtype: ScalarType.Int64).view(2, 3)), new("empty", zeros(0, 5))]);
        byte[] valid = File.ReadAllBytes(path);
        File.Delete(path);
        int header = 8 + (int)BitConverter.ToUInt64(valid, 0);
        Fuzz("safetensors", "model.safetensors", valid, Mutations.BinaryEdits(valid, header), 500, p =>
        {
            using var scope = NewDisposeScope();
            SafetensorsFile.Read(p);
        });
    }

    [Fact]
    public void SafetensorsOfACheckpoint()
    {
        byte[] valid = File.ReadAllBytes(Path.Combine(TinyModel, "model.safetensors"));
        int header = 8 + (int)BitConverter.ToUInt64(valid, 0);
        Fuzz("checkpoint-safetensors", "model.safetensors", valid, Mutations.BinaryEdits(valid, header), 100,
            path => LoadCheckpoint(Path.GetDirectoryName(path)!), c => CopyModel(c.Folder, "model.safetensors"));
    }

    [Fact]
    public void PickledHeadWrittenByTorch()
    {
        byte[] valid = File.ReadAllBytes(Path.Combine(TinyModel, "colbert_linear.pt"));
        Fuzz("pickle-torch", "colbert_linear.pt", valid, Mutations.BinaryEdits(valid, valid.Length), 400, ReadPickle);
    }

    [Fact]
    public void PickledHeadWrittenByTorchSharp()
    {
        string folder = Directory.CreateTempSubdirectory("m3-fuzz-valid-").FullName;
        using (var checkpoint = M3Checkpoint.Load(TinyModel)) checkpoint.Save(Path.Combine(folder, "saved"));
        byte[] valid = File.ReadAllBytes(Path.Combine(folder, "saved", "sparse_linear.pt"));
        Directory.Delete(folder, recursive: true);
        Fuzz("pickle-torchsharp", "sparse_linear.pt", valid, Mutations.BinaryEdits(valid, valid.Length), 200, ReadPickle);
    }

    static void ReadPickle(string path)
    {
        using var scope = NewDisposeScope();
        using var file = new TorchPickleReader(path);
        file.ReadAll();
    }

    [Fact]
    public void PickledHeadOfACheckpoint()
    {
        byte[] valid = File.ReadAllBytes(Path.Combine(TinyModel, "sparse_linear.pt"));
        Fuzz("checkpoint-pickle", "sparse_linear.pt", valid, Mutations.BinaryEdits(valid, valid.Length), 100,
            path => LoadCheckpoint(Path.GetDirectoryName(path)!), c => CopyModel(c.Folder, "sparse_linear.pt"));
    }

    [Fact]
    public void ConfigJsonOfACheckpoint()
    {
        byte[] valid = File.ReadAllBytes(Path.Combine(TinyModel, "config.json"));
        Fuzz("checkpoint-config", "config.json", valid, Mutations.TextEdits(valid), 200,
            path => LoadCheckpoint(Path.GetDirectoryName(path)!), c => CopyModel(c.Folder, "config.json"));
    }

    [Fact]
    public void RowIndex()
    {
        using var folder = new DataTestFolder();
        string data = folder.Write("rows.jsonl", string.Join("\n", File.ReadLines(Repo("data", "train", "toy_train_data1.jsonl")).Take(4)) + "\n");
        IReadOnlyList<RowInfo> Rows(string path)
        {
            using var loaded = DataTestFolder.Load(new DataConfig { Files = [path], TrainGroupSize = 2, CacheTokenCounts = true });
            return loaded.Files[0].Rows.ToList();
        }
        var expected = Rows(data);
        string cache = Directory.GetFiles(Path.Combine(folder.Path, RowIndexStore.FolderName)).Single();
        byte[] valid = File.ReadAllBytes(cache);
        string relative = Path.Combine(RowIndexStore.FolderName, Path.GetFileName(cache));
        // A damaged row index is never an error and never trusted: the rows always come out as the data file says.
        Fuzz("row-index", relative, valid, Mutations.BinaryEdits(valid, valid.Length), 200, path =>
        {
            var rows = Rows(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(path)!)!, "rows.jsonl"));
            if (!rows.SequenceEqual(expected)) throw new InvalidOperationException("rows read from a damaged row index differ from the data file's");
        }, c =>
        {
            Directory.CreateDirectory(Path.Combine(c.Folder, RowIndexStore.FolderName));
            File.Copy(data, Path.Combine(c.Folder, "rows.jsonl"));
        });
    }

    [Fact]
    public void SentencePieceModel()
    {
        byte[] valid = File.ReadAllBytes(Path.Combine(TinyModel, XlmrTokenizer.ModelFileName));
        Fuzz("sentencepiece", XlmrTokenizer.ModelFileName, valid, Mutations.BinaryEdits(valid, valid.Length), 150, path =>
        {
            var tokenizer = XlmrTokenizer.FromFile(path);
            int[] ids = tokenizer.Encode("Dense retrieval maps queries and passages: ünïcödé, 数字 42.");
            tokenizer.Decode(ids);
        }, alsoAllowed: e => e is InvalidDataException);
    }

    public static TheoryData<string> BeirFiles => new() { "corpus.jsonl", "queries.jsonl", "qrels.tsv" };

    [Theory]
    [MemberData(nameof(BeirFiles))]
    public void BeirFile(string name)
    {
        byte[] valid = Encoding.UTF8.GetBytes(string.Join("\n", File.ReadLines(Repo("data", "beir-sample", name)).Take(6)) + "\n");
        Action<string> read = name switch
        {
            "corpus.jsonl" => path => BeirReader.ReadCorpus(path),
            "queries.jsonl" => path => BeirReader.ReadQueries(path),
            _ => path => BeirReader.ReadQrels(path),
        };
        Fuzz($"beir-{Path.GetFileNameWithoutExtension(name)}", name, valid, Mutations.TextEdits(valid), 150, read);
    }
}
