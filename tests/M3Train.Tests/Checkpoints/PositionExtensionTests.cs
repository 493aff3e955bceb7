using System.CommandLine;
using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Cli;
using M3Train.Model;
using M3Train.Tests.Data;
using M3Train.Tests.Export;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Checkpoints;

public sealed class PositionExtensionTests
{
    const string TableKey = "embeddings.position_embeddings.weight";

    static string TinyModel => Path.Combine(DataTestFolder.RepoRoot, "data", "models", "tiny-m3");

    static Tensor Table(string folder) =>
        SafetensorsFile.Read(Path.Combine(folder, "model.safetensors")).Single(kv => kv.Key == TableKey).Value;

    static int Invoke(params string[] args) =>
        Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });

    [Fact]
    public void CopyKeepsEveryRowAndRepeatsTheLearnedRowsCyclically()
    {
        using var temp = new TempFolder();
        Assert.Equal(0, Invoke("extend-positions", "--model", TinyModel, "--max-positions", "300", "--output", temp.Sub("long")));

        using var before = Table(TinyModel);   // [130, D]
        using var after = Table(temp.Sub("long"));
        Assert.Equal([300, before.shape[1]], after.shape);
        Assert.True(after[..130].equal(before).all().item<bool>(), "the old rows changed");
        for (int r = 130; r < 300; r++)
            Assert.True(after[r].equal(before[2 + (r - 2) % 128]).all().item<bool>(), $"row {r} is not learned row {(r - 2) % 128}");
        Assert.Equal(300, XlmRobertaConfig.Load(temp.Sub("long/config.json")).MaxPositionEmbeddings);
    }

    [Fact]
    public void ExtendedModelEncodesShortTextsExactlyAsTheOriginal()
    {
        using var temp = new TempFolder();
        PositionExtension.Extend(TinyModel, temp.Sub("long"), 1026, PositionExtensionMethod.Copy);

        using var original = M3Checkpoint.Load(TinyModel);
        using var extended = M3Checkpoint.Load(temp.Sub("long"));
        Assert.True(extended.HeadsLoaded);
        original.Model.eval();
        extended.Model.eval();
        var tokenizer = DataTestFolder.Tokenizer;
        var batch = tokenizer.EncodePadded(["Dense retrieval maps queries and passages into one space.", "Short."]);
        using var ids = tensor(batch.InputIds, [batch.BatchSize, batch.SequenceLength]);
        using var mask = tensor(batch.AttentionMask, [batch.BatchSize, batch.SequenceLength]);
        using var noGrad = no_grad();
        var a = original.Model.Encode(ids, mask);
        var b = extended.Model.Encode(ids, mask);
        Assert.True(a.Dense.equal(b.Dense).all().item<bool>());
        Assert.True(a.TokenWeights!.equal(b.TokenWeights!).all().item<bool>());
        Assert.True(a.ColbertVectors!.equal(b.ColbertVectors!).all().item<bool>());

        // The longer table is used: a text past the old 128-token limit encodes without error.
        using var longIds = full([1, 600], 7L, dtype: ScalarType.Int64);
        longIds[0, 0] = tensor(0L);
        using var longMask = ones(1, 600, dtype: ScalarType.Int64);
        Assert.Equal([1, 600, 32], extended.Model.Backbone.Forward(longIds, longMask).shape);
    }

    [Fact]
    public void InterpolateKeepsReservedAndEndRowsAndBlendsBetween()
    {
        using var table = arange(10 * 3, dtype: ScalarType.Float32).view(10, 3);  // 2 reserved + 8 learned rows
        using var grown = PositionExtension.ExtendTable(table, 17, paddingIdx: 1, PositionExtensionMethod.Interpolate);
        Assert.Equal([17, 3], grown.shape);
        Assert.True(grown[..2].equal(table[..2]).all().item<bool>());
        Assert.True(grown[2].equal(table[2]).all().item<bool>());
        Assert.True(grown[16].equal(table[9]).all().item<bool>());
        // 15 new learned rows over 8 old ones: row 2 + j samples old learned position j · 7/14 = j/2.
        Assert.True(grown[3].allclose((table[2] + table[3]) / 2));
        Assert.True(grown[4].allclose(table[3]));
    }

    [Fact]
    public void KeepsOtherFilesAndTensorsAndFollowsTheTokenizerLimit()
    {
        using var temp = new TempFolder();
        string source = temp.Sub("mlm");
        Directory.CreateDirectory(source);
        foreach (string file in Directory.GetFiles(TinyModel).Where(f => Path.GetFileName(f) != "model.safetensors"))
            File.Copy(file, Path.Combine(source, Path.GetFileName(file)));
        var tokenizerConfig = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer_config.json")))!;
        tokenizerConfig["model_max_length"] = 128;
        File.WriteAllText(Path.Combine(source, "tokenizer_config.json"), tokenizerConfig.ToJsonString());
        var tensors = SafetensorsFile.Read(Path.Combine(TinyModel, "model.safetensors"))
            .Select(kv => new KeyValuePair<string, Tensor>("roberta." + kv.Key, kv.Value)).ToList();
        tensors.Add(new("lm_head.bias", arange(1502, dtype: ScalarType.Float32)));
        SafetensorsFile.Write(Path.Combine(source, "model.safetensors"), tensors);

        var result = PositionExtension.Extend(source, temp.Sub("long"), 258, PositionExtensionMethod.Copy);

        Assert.Equal("roberta." + TableKey, result.Key);
        var written = SafetensorsFile.Read(result.WeightsFile);
        Assert.Equal(tensors.Select(kv => kv.Key), written.Select(kv => kv.Key));
        foreach (var ((key, want), (_, got)) in tensors.Zip(written).Where(x => x.First.Key != "roberta." + TableKey))
            Assert.True(want.equal(got).all().item<bool>(), $"{key} changed");
        foreach (string file in new[] { "colbert_linear.pt", "sparse_linear.pt", "sentencepiece.bpe.model", "tokenizer.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(source, file)), File.ReadAllBytes(temp.Sub($"long/{file}")));
        var limit = JsonNode.Parse(File.ReadAllText(temp.Sub("long/tokenizer_config.json")))!["model_max_length"]!.GetValue<int>();
        Assert.Equal(256, limit);
        Assert.False(Directory.EnumerateDirectories(temp.Path, ".*").Any(), "a staging folder was left behind");
        foreach (var (_, t) in tensors.Concat(written)) t.Dispose();
    }

    [Fact]
    public void RefusesToShrinkOrOverwrite()
    {
        using var temp = new TempFolder();
        var shrink = Assert.Throws<M3TrainException>(() => PositionExtension.Extend(TinyModel, temp.Sub("a"), 100, PositionExtensionMethod.Copy));
        Assert.Contains("must exceed", shrink.Message);
        Directory.CreateDirectory(temp.Sub("b"));
        var exists = Assert.Throws<M3TrainException>(() => PositionExtension.Extend(TinyModel, temp.Sub("b"), 200, PositionExtensionMethod.Copy));
        Assert.Contains("--force", exists.Message);
    }

    [Fact]
    public void AnAbsurdPositionCountIsRefusedSayingTheBoundAndLeavesNoFolder()
    {
        using var temp = new TempFolder();
        var error = Assert.Throws<M3TrainException>(() => PositionExtension.Extend(TinyModel, temp.Sub("huge"), 2_000_000_000, PositionExtensionMethod.Copy));
        Assert.Contains($"at most {XlmRobertaConfig.MaxPositions}", error.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp.Path));
    }

    [Fact]
    public void AFailedRunRemovesItsStagingFolderAndTheNextRemovesAKilledOnes()
    {
        using var temp = new TempFolder();
        string source = temp.Sub("broken");
        Directory.CreateDirectory(source);
        foreach (string file in Directory.GetFiles(TinyModel))
            File.Copy(file, Path.Combine(source, Path.GetFileName(file)));
        File.WriteAllText(Path.Combine(source, "tokenizer_config.json"), "{ not json");
        string killed = temp.Sub(".long.extending-0123456789abcdef");
        Directory.CreateDirectory(killed);

        var error = Assert.Throws<M3TrainException>(() => PositionExtension.Extend(source, temp.Sub("long"), 258, PositionExtensionMethod.Copy));
        Assert.Contains("tokenizer_config.json: not valid JSON", error.Message);
        Assert.Equal([source], Directory.EnumerateFileSystemEntries(temp.Path));
    }
}
