using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Model;
using M3Train.Tests.Data;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Checkpoints;

/// <summary>
/// Checkpoints from elsewhere are untrusted: every hostile config.json, safetensors file and pickled head below is a
/// clear error naming the file before anything is allocated, or loads exactly what it says.
/// </summary>
[Collection(SerilogCaptureCollection.Name)]
public sealed class UntrustedCheckpointTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("m3-untrusted-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    static string TinyModel => Path.Combine(DataTestFolder.RepoRoot, "data", "models", "tiny-m3");

    string CopyTiny(string name)
    {
        string folder = Path.Combine(_root, name);
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.GetFiles(TinyModel))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }

    static void EditConfig(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, "config.json");
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(root);
        File.WriteAllText(path, root.ToJsonString());
    }

    static M3TrainException LoadFails(string folder, M3CheckpointLoadOptions? options = null) =>
        Assert.Throws<M3TrainException>(() => M3Checkpoint.Load(folder, options));

    public static TheoryData<string, double> OutOfBoundsSizes => new()
    {
        { "hidden_size", 1e9 }, { "num_hidden_layers", 1e6 }, { "intermediate_size", 1e9 }, { "vocab_size", 2e9 },
        { "max_position_embeddings", 2e9 }, { "type_vocab_size", 1e6 }, { "num_attention_heads", 7 }, { "num_attention_heads", 0 },
        { "layer_norm_eps", -1 }, { "layer_norm_eps", 0 }, { "vocab_size", 3 }, { "eos_token_id", 5000 }, { "initializer_range", -0.02 },
    };

    [Theory]
    [MemberData(nameof(OutOfBoundsSizes))]
    public void ConfigJsonSizesOutsideTheirBoundsAreRefusedByKey(string key, double value)
    {
        string folder = CopyTiny("sizes");
        EditConfig(folder, c => c[key] = value == Math.Floor(value) && Math.Abs(value) < long.MaxValue ? (JsonNode)(long)value : value);
        var error = LoadFails(folder);
        Assert.Contains(Path.Combine(folder, "config.json"), error.Message);
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void ConfigWithinBoundsThatTheWeightsDoNotHoldIsRefusedNamingTheTensors()
    {
        string folder = CopyTiny("bigger");
        File.Delete(Path.Combine(folder, "colbert_linear.pt"));
        File.Delete(Path.Combine(folder, "sparse_linear.pt"));
        using var log = new LogCapture();
        EditConfig(folder, c => { c["hidden_size"] = 4096; c["intermediate_size"] = 16384; });
        var error = LoadFails(folder, new M3CheckpointLoadOptions { AllowMissing = true, AllowUnexpected = true });
        Assert.Contains("model.safetensors", error.Message);
        Assert.Contains("word_embeddings.weight: [1502, 32] in the file, [1502, 4096]", error.Message);
    }

    [Fact]
    public void WeightsThatBackLittleOfTheConfiguredModelAreRefusedEvenWhenMissingKeysAreAllowed()
    {
        string folder = CopyTiny("unbacked");
        File.Delete(Path.Combine(folder, "model.safetensors"));
        SafetensorsFile.Write(Path.Combine(folder, "model.safetensors"), [new("extra.scale", ones(4))]);
        EditConfig(folder, c =>
        {
            c["hidden_size"] = 1024; c["num_hidden_layers"] = 24; c["num_attention_heads"] = 16; c["intermediate_size"] = 4096;
            c["vocab_size"] = 250002; c["max_position_embeddings"] = 8194;
        });
        File.Delete(Path.Combine(folder, "colbert_linear.pt"));
        File.Delete(Path.Combine(folder, "sparse_linear.pt"));
        using var log = new LogCapture();
        var error = LoadFails(folder, new M3CheckpointLoadOptions { AllowMissing = true, AllowUnexpected = true });
        Assert.Contains("is not in", error.Message);
        Assert.Contains("config.json", error.Message);
    }

    [Fact]
    public void ParameterShapesWorkedOutFromTheConfigAreThoseOfTheModel()
    {
        foreach (var (colbert, lmHead) in new[] { (32, false), (8, true) })
        {
            using var model = new M3Model(XlmRobertaConfig.Tiny(), colbert, lmHead);
            var expected = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
            var computed = M3ParameterShapes.For(XlmRobertaConfig.Tiny(), colbert, lmHead);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), computed.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, shape) in expected) Assert.Equal(shape, computed[name]);
        }
    }

    public static TheoryData<string, string, int> HostileSafetensors => new()
    {
        // header, data bytes, a word the message must contain
        { """{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", "", 0 },
        { """{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", "", 0 },
        { """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,9223372036854775807]}}""", "", 0 },
        { """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}""", "", 0 },
        { """{"w":{"dtype":"F32","shape":[10000000000],"data_offsets":[0,40000000000]}}""", "", 0 },
        { """{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", "", 0 },
        { """{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "", 0 },
        { """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "", 16 },
        { """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "", 16 },
        { """{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", "", 8 },
        { """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}}""", "", 16 },
        { """{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}""", "", 8 },
        { """{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}""", "", 8 },
        { """{"__metadata__":{"format":7}}""", "", 0 },
        { """[1, 2]""", "", 0 },
        { """{"w":""", "", 0 },
    };

    [Theory]
    [MemberData(nameof(HostileSafetensors))]
    public void HostileSafetensorsHeadersAreErrorsNamingTheFile(string header, string _, int dataBytes)
    {
        string path = Path.Combine(_root, "hostile.safetensors");
        CraftedFiles.Safetensors(path, header, new byte[dataBytes]);
        var error = Assert.Throws<M3TrainException>(() => SafetensorsFile.Read(path));
        Assert.StartsWith(path + ":", error.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void FilesOfFewerThanEightBytesAreNotSafetensors(int length)
    {
        string folder = CopyTiny($"short-{length}");
        File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), new byte[length]);
        var error = LoadFails(folder);
        Assert.Contains("too short for a safetensors file", error.Message);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData(1UL << 31)]
    [InlineData(ulong.MaxValue)]
    public void AHeaderLengthTheFileCannotHoldIsAnError(ulong length)
    {
        string path = Path.Combine(_root, "length.safetensors");
        var bytes = new byte[64];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<M3TrainException>(() => SafetensorsFile.Read(path));
        Assert.Contains($"header length {length}", error.Message);
    }

    [Fact]
    public void AHeaderThatIsNotUtf8IsAnError()
    {
        string path = Path.Combine(_root, "latin1.safetensors");
        byte[] header = [.. "{\"w\u00e9\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"u8];
        header[4] = 0xE9;
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)header.Length), .. header, 0, 0, 0, 0]);
        var error = Assert.Throws<M3TrainException>(() => SafetensorsFile.Read(path));
        Assert.Contains("not valid UTF-8", error.Message);
    }

    [Fact]
    public void AConfigJsonWithARepeatedKeyIsAnError()
    {
        string folder = CopyTiny("repeated");
        string path = Path.Combine(folder, "config.json");
        File.WriteAllText(path, File.ReadAllText(path).TrimEnd().TrimEnd('}') + ", \"hidden_size\": 64}");
        var error = LoadFails(folder);
        Assert.StartsWith($"{path}: not valid JSON", error.Message);
        Assert.Contains("hidden_size", error.Message);
    }

    [Fact]
    public void AZipWhoseDirectoryIsDamagedIsAnError()
    {
        string folder = CopyTiny("zip");
        string path = Path.Combine(folder, "sparse_linear.pt");
        byte[] bytes = File.ReadAllBytes(path);
        int end = bytes.AsSpan().LastIndexOf("PK\u0005\u0006"u8);
        bytes[end + 10] ^= 0x7F;   // entries in the central directory, as the end record counts them
        File.WriteAllBytes(path, bytes);
        var error = LoadFails(folder);
        Assert.StartsWith($"{path}: damaged zip archive", error.Message);
    }

    [Fact]
    public void OverlappingTensorsAreRefusedNamingBoth()
    {
        string path = Path.Combine(_root, "overlap.safetensors");
        CraftedFiles.Safetensors(path, """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", new byte[12]);
        var error = Assert.Throws<M3TrainException>(() => SafetensorsFile.Read(path));
        Assert.Contains("'a'", error.Message);
        Assert.Contains("'b'", error.Message);
        Assert.Contains("overlap", error.Message);
    }

    [Fact]
    public void AnIntegerTensorWhereTheModelHasFloatsIsRefusedNotCast()
    {
        string folder = CopyTiny("int32");
        const string key = "encoder.layer.0.attention.self.query.bias";
        RewriteEncoder(folder, kv => kv.Key == key ? new(key, kv.Value.to(ScalarType.Int32)) : kv);
        var error = LoadFails(folder);
        Assert.Contains(key, error.Message);
        Assert.Contains("Int32", error.Message);
    }

    [Fact]
    public void HalfPrecisionWeightsAreConvertedToTheModelsFloat32()
    {
        string folder = CopyTiny("f16");
        const string key = "encoder.layer.0.attention.self.query.weight";
        RewriteEncoder(folder, kv => kv.Key == key ? new(key, kv.Value.to(ScalarType.Float16)) : kv);
        using var original = M3Checkpoint.Load(TinyModel);
        using var half = M3Checkpoint.Load(folder);
        var expected = original.Model.named_parameters().Single(p => p.name == "model." + key).parameter.to(ScalarType.Float16).to(ScalarType.Float32);
        var loaded = half.Model.named_parameters().Single(p => p.name == "model." + key).parameter;
        Assert.True(expected.equal(loaded).all().item<bool>());
    }

    [Fact]
    public void TwoKeysForTheSameWeightAreRefused()
    {
        string folder = CopyTiny("twice");
        RewriteEncoder(folder, kv => kv, extra: t => t.Append(new("roberta.embeddings.LayerNorm.bias", t.Single(kv => kv.Key == "embeddings.LayerNorm.bias").Value.clone())));
        var error = LoadFails(folder, new M3CheckpointLoadOptions { AllowUnexpected = true });
        Assert.Contains("holds the same weight as", error.Message);
    }

    [Fact]
    public void OneHeadFileWithoutTheOtherIsAnIncompleteFolder()
    {
        string folder = CopyTiny("one-head");
        File.Delete(Path.Combine(folder, "sparse_linear.pt"));
        var error = LoadFails(folder);
        Assert.Contains("sparse_linear.pt is missing", error.Message);
    }

    [Fact]
    public void WithoutBothHeadFilesHeadsStartFreshWithAWarningUnlessTheyAreRequired()
    {
        string folder = CopyTiny("no-heads");
        File.Delete(Path.Combine(folder, "sparse_linear.pt"));
        File.Delete(Path.Combine(folder, "colbert_linear.pt"));
        using (var log = new LogCapture())
        using (var loaded = M3Checkpoint.Load(folder, new M3CheckpointLoadOptions { ColbertDim = 8 }))
        {
            Assert.False(loaded.HeadsLoaded);
            Assert.Equal(8, loaded.Model.ColbertHead.OutputSize);
            Assert.Contains("initialized", Assert.Single(log.Warnings));
        }
        var error = LoadFails(folder, new M3CheckpointLoadOptions { RequireHeads = true });
        Assert.Contains("colbert_linear.pt and sparse_linear.pt missing", error.Message);
    }

    public static TheoryData<string> HostileHeads => new() { "overflow", "short-storage", "past-storage", "int-storage", "os-system", "parameter", "legacy", "empty", "negative-offset", "bomb" };

    [Theory]
    [MemberData(nameof(HostileHeads))]
    public void HostilePickledHeadsAreErrorsNamingTheFileAndNothingIsRun(string kind)
    {
        string folder = CopyTiny("head-" + kind);
        string path = Path.Combine(folder, "sparse_linear.pt");
        var weight = CraftedTensor.Float("weight", "0", 1, 32);
        var bias = CraftedTensor.Float("bias", "1", 1);
        var storages = new Dictionary<string, byte[]> { ["0"] = CraftedFiles.Floats(32), ["1"] = CraftedFiles.Floats(1) };
        switch (kind)
        {
            case "overflow": weight = weight with { StorageElements = long.MaxValue / 2, Shape = [long.MaxValue / 2, 4] }; break;
            case "short-storage": weight = weight with { StorageElements = 1L << 40 }; break;
            case "past-storage": weight = weight with { Offset = 1 }; break;
            case "negative-offset": weight = weight with { Offset = -4 }; break;
            case "int-storage": weight = weight with { StorageType = "IntStorage" }; break;
        }
        byte[]? pickle = kind switch
        {
            "os-system" => System.Text.Encoding.Latin1.GetBytes("\u0080\u0002cos\nsystem\nX\u0004\u0000\u0000\u0000touch\u0085R."),
            "parameter" => System.Text.Encoding.Latin1.GetBytes("\u0080\u0002ctorch._utils\n_rebuild_parameter\n)R."),
            _ => null,
        };
        CraftedFiles.TorchZip(path, [weight, bias], storages, pickle);
        if (kind == "legacy") File.WriteAllBytes(path, [0x80, 0x02, 0x8a, 0x0a]);
        if (kind == "empty") File.WriteAllBytes(path, []);
        if (kind == "bomb") ClaimHugeEntry(path);

        var error = LoadFails(folder);
        Assert.Contains(path, error.Message);
        if (kind == "int-storage") Assert.Contains("Int32", error.Message);
        if (kind == "os-system") Assert.Contains("nothing in it is run", error.Message);
    }

    [Fact]
    public void AHandWrittenStateDictLoadsExactlyWhatItHolds()
    {
        string folder = CopyTiny("crafted-head");
        string path = Path.Combine(folder, "sparse_linear.pt");
        // The weight is a strided view (every other element of a 64-element storage) to show strides are honoured.
        var weight = new CraftedTensor("weight", "FloatStorage", "0", 64, 0, [1, 32], [64, 2]);
        CraftedFiles.TorchZip(path, [weight, CraftedTensor.Float("bias", "1", 1)],
            new Dictionary<string, byte[]> { ["0"] = CraftedFiles.Floats(64), ["1"] = CraftedFiles.Floats(1) });
        using var loaded = M3Checkpoint.Load(folder);
        var w = loaded.Model.SparseHead.named_parameters().Single(p => p.name == "weight").parameter;
        Assert.Equal(Enumerable.Range(0, 32).Select(i => 2f * i), w.data<float>().ToArray());
    }

    /// <summary>Rewrites the storage entry's sizes in the zip's directories to claim 40 GB from its few bytes.</summary>
    static void ClaimHugeEntry(string path)
    {
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Update))
        {
            var entry = zip.GetEntry("archive/data/0")!;
            entry.Delete();
            using var stream = zip.CreateEntry("archive/data/0", System.IO.Compression.CompressionLevel.SmallestSize).Open();
            stream.Write(new byte[128]);
        }
        byte[] bytes = File.ReadAllBytes(path);
        // Central directory and local header: the uncompressed size of archive/data/0 becomes 0x9_0000_0000 bytes' worth in 32 bits (0xFFFFFFF0).
        var name = "archive/data/0"u8.ToArray();
        for (int i = 0; i + name.Length < bytes.Length; i++)
        {
            if (!bytes.AsSpan(i, name.Length).SequenceEqual(name)) continue;
            int sizeAt = bytes[i - 46 + 0] == 0x50 && bytes[i - 46 + 1] == 0x4b && bytes[i - 46 + 2] == 0x01 ? i - 46 + 24
                       : bytes[i - 30] == 0x50 && bytes[i - 30 + 1] == 0x4b && bytes[i - 30 + 2] == 0x03 ? i - 30 + 22
                       : -1;
            if (sizeAt > 0) System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(sizeAt), 0xFFFFFFF0);
        }
        File.WriteAllBytes(path, bytes);
    }

    static void RewriteEncoder(string folder, Func<KeyValuePair<string, Tensor>, KeyValuePair<string, Tensor>> edit,
        Func<List<KeyValuePair<string, Tensor>>, IEnumerable<KeyValuePair<string, Tensor>>>? extra = null)
    {
        using var scope = NewDisposeScope();
        string path = Path.Combine(folder, "model.safetensors");
        var tensors = SafetensorsFile.Read(path).Select(edit).ToList();
        if (extra is not null) tensors = extra(tensors).ToList();
        File.Delete(path);
        SafetensorsFile.Write(path, tensors);
    }
}
