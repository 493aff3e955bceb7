using M3Train.Checkpoints;
using M3Train.Model;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Checkpoints;

[Collection(SerilogCaptureCollection.Name)]
public sealed class M3CheckpointTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("m3ckpt-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public static TheoryData<string> GoldenCheckpoints() => new(GoldenFolder.CheckpointFolders());

    [Theory]
    [MemberData(nameof(GoldenCheckpoints))]
    public void SaveThenLoadIsBitExactAndKeepsFilesAndKeys(string folder)
    {
        string source = GoldenFolder.File(folder);
        string saved = Path.Combine(_root, "saved");
        using (var original = M3Checkpoint.Load(source))
        {
            original.Save(saved);
            using var reloaded = M3Checkpoint.Load(saved);
            Assert.True(reloaded.HeadsLoaded);
            AssertSameParameters(original.Model, reloaded.Model);
        }

        // The same files, except that the encoder is always written as safetensors, plus sentence-transformers' files.
        var expectedFiles = Directory.GetFiles(source).Select(Path.GetFileName)
            .Select(f => f == "pytorch_model.bin" ? "model.safetensors" : f).Concat(SentenceTransformersFiles.RootFiles).Order(StringComparer.Ordinal);
        Assert.Equal(expectedFiles, Directory.GetFiles(saved).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(Directory.GetDirectories(_root), d => Path.GetFileName(d).StartsWith('.'));

        Assert.Equal(EncoderKeys(source).Order(StringComparer.Ordinal), EncoderKeys(saved).Order(StringComparer.Ordinal));
        foreach (string head in new[] { "colbert_linear.pt", "sparse_linear.pt" })
            Assert.Equal(HeadKeys(Path.Combine(source, head)), HeadKeys(Path.Combine(saved, head)));
        Assert.Equal(ConfigKeys(source), ConfigKeys(saved));
        AssertSameConfig(XlmRobertaConfig.Load(Path.Combine(source, "config.json")), XlmRobertaConfig.Load(Path.Combine(saved, "config.json")));

        // Every tensor of the source file comes back with the same dtype, shape and bits.
        using var scope = NewDisposeScope();
        var before = ReadEncoder(source);
        var after = ReadEncoder(saved);
        foreach (var (key, tensor) in before)
        {
            Assert.Equal(tensor.dtype, after[key].dtype);
            Assert.True(tensor.equal(after[key]).all().item<bool>(), $"{folder}: {key} changed on the round trip");
        }
    }

    [Fact]
    public void MaskedLmCheckpointKeepsPrefixAndLmHead()
    {
        using var model = new M3Model(XlmRobertaConfig.Tiny(), withLmHead: true);
        string source = Path.Combine(_root, "mlm");
        var hf = CheckpointLayout.For(model);
        var keys = hf.EncoderKeys.Select(k => k.StartsWith("lm_head.", StringComparison.Ordinal) ? k : "roberta." + k)
            .Append("lm_head.decoder.weight").Append("lm_head.decoder.bias").ToList();
        using (var layout = new CheckpointLayout("roberta.", keys, new Dictionary<string, Tensor>()))
            M3CheckpointWriter.Save(model, source, layout);

        string resaved = Path.Combine(_root, "mlm-resaved");
        using (var loaded = M3Checkpoint.Load(source))
        {
            Assert.Equal("roberta.", loaded.Layout.KeyPrefix);
            Assert.NotNull(loaded.Model.LmHead);
            AssertSameParameters(model, loaded.Model);
            loaded.Save(resaved);
        }
        Assert.Equal(keys.Order(StringComparer.Ordinal), EncoderKeys(resaved).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void MissingKeyIsAnErrorUnlessAllowed()
    {
        string folder = CopyGolden("missing");
        RewriteEncoder(folder, tensors => tensors.Where(kv => kv.Key != "encoder.layer.1.output.dense.bias"));

        var error = Assert.Throws<M3TrainException>(() => M3Checkpoint.Load(folder));
        Assert.Contains("encoder.layer.1.output.dense.bias", error.Message);
        using var loaded = M3Checkpoint.Load(folder, new M3CheckpointLoadOptions { AllowMissing = true });
        Assert.Equal(["encoder.layer.1.output.dense.bias"], loaded.MissingKeys);
    }

    [Fact]
    public void UnexpectedKeyIsAnErrorUnlessAllowedAndIsWrittenBack()
    {
        string folder = CopyGolden("unexpected");
        RewriteEncoder(folder, tensors => tensors.Append(new("extra.scale", ones(3))));

        var error = Assert.Throws<M3TrainException>(() => M3Checkpoint.Load(folder));
        Assert.Contains("extra.scale", error.Message);
        string saved = Path.Combine(_root, "unexpected-saved");
        using (var loaded = M3Checkpoint.Load(folder, new M3CheckpointLoadOptions { AllowUnexpected = true }))
        {
            Assert.Equal(["extra.scale"], loaded.UnexpectedKeys);
            loaded.Save(saved);
        }
        Assert.Contains("extra.scale", EncoderKeys(saved));
    }

    [Fact]
    public void BroadcastableShapeMismatchIsAnError()
    {
        string folder = CopyGolden("shape");
        const string key = "encoder.layer.0.attention.self.query.weight";
        RewriteEncoder(folder, tensors => tensors.Select(kv => kv.Key == key ? new(key, kv.Value[..1].clone()) : kv));

        var error = Assert.Throws<M3TrainException>(() => M3Checkpoint.Load(folder, new M3CheckpointLoadOptions { AllowMissing = true, AllowUnexpected = true }));
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void SavingOverAnExistingCheckpointReplacesItWhole()
    {
        string target = Path.Combine(_root, "target");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "stale.txt"), "from an older save");
        using var model = new M3Model(XlmRobertaConfig.Tiny());
        M3CheckpointWriter.Save(model, target);
        M3CheckpointWriter.Save(model, target);

        Assert.False(File.Exists(Path.Combine(target, "stale.txt")));
        Assert.Equal(new[] { "colbert_linear.pt", "config.json", "model.safetensors", "sparse_linear.pt" }.Concat(SentenceTransformersFiles.RootFiles).Order(StringComparer.Ordinal),
            Directory.GetFiles(target).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Single(Directory.GetFileSystemEntries(_root));
        using var loaded = M3Checkpoint.Load(target);
        AssertSameParameters(model, loaded.Model);
    }

    static void AssertSameParameters(M3Model expected, M3Model actual)
    {
        var theirs = actual.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(expected.named_parameters().Select(p => p.name).Order(), theirs.Keys.Order());
        foreach (var (name, parameter) in expected.named_parameters())
            Assert.True(parameter.equal(theirs[name]).all().item<bool>(), $"{name} differs");
    }

    static void AssertSameConfig(XlmRobertaConfig expected, XlmRobertaConfig actual)
    {
        var noExtra = new Dictionary<string, System.Text.Json.Nodes.JsonNode?>();
        Assert.Equal(expected with { Extra = noExtra }, actual with { Extra = noExtra });
        Assert.Equal(expected.Extra.Keys.Order(StringComparer.Ordinal), actual.Extra.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, value) in expected.Extra)
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(value, actual.Extra[key]), $"config.json: {key} changed");
    }

    string CopyGolden(string name)
    {
        string folder = Path.Combine(_root, name);
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.GetFiles(GoldenFolder.ReferenceCheckpoint))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }

    static void RewriteEncoder(string folder, Func<IEnumerable<KeyValuePair<string, Tensor>>, IEnumerable<KeyValuePair<string, Tensor>>> edit)
    {
        using var scope = NewDisposeScope();
        string path = Path.Combine(folder, "model.safetensors");
        var tensors = edit(SafetensorsFile.Read(path)).ToList();
        File.Delete(path);
        SafetensorsFile.Write(path, tensors);
    }

    static Dictionary<string, Tensor> ReadEncoder(string folder)
    {
        string safetensors = Path.Combine(folder, "model.safetensors");
        if (File.Exists(safetensors)) return SafetensorsFile.Read(safetensors).ToDictionary(kv => kv.Key, kv => kv.Value);
        return PyTorchUnpickler.UnpickleStateDict(Path.Combine(folder, "pytorch_model.bin"))
            .Cast<System.Collections.DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
    }

    static List<string> EncoderKeys(string folder)
    {
        using var scope = NewDisposeScope();
        return ReadEncoder(folder).Keys.ToList();
    }

    static List<string> HeadKeys(string path)
    {
        using var scope = NewDisposeScope();
        return PyTorchUnpickler.UnpickleStateDict(path).Keys.Cast<string>().Order(StringComparer.Ordinal).ToList();
    }

    static List<string> ConfigKeys(string folder) =>
        System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject()
            .Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
}
