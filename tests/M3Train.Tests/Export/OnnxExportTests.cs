using M3Train.Onnx;
using Onnx;
using Xunit;

namespace M3Train.Tests.Export;

public sealed class OnnxExportTests
{
    static readonly Lazy<OnnxExportSource> Source = new(TinyM3.Source);

    public static TheoryData<OnnxPrecision, int, int> ParityCases()
    {
        var data = new TheoryData<OnnxPrecision, int, int>();
        foreach (var precision in new[] { OnnxPrecision.Fp32, OnnxPrecision.Fp16 })
            foreach (int batch in new[] { 1, 4 })
                foreach (int length in new[] { 5, 60 })
                    data.Add(precision, batch, length);
        return data;
    }

    [Theory]
    [MemberData(nameof(ParityCases))]
    public void OnnxRuntimeMatchesDoublePrecisionReference(OnnxPrecision precision, int batch, int length)
    {
        using var temp = TinyM3.Temp();
        var source = Source.Value;
        M3OnnxExporter.Export(source, temp.Sub("onnx"), new OnnxExportOptions { Precision = precision });
        using var encoder = OnnxM3Encoder.Open(temp.Sub("onnx"), intraOpThreads: 1);
        var (ids, mask) = OnnxTestBatches.Make(batch, length, source.Config.VocabSize, seed: batch * 100 + length);

        var outputs = encoder.Run(ids, mask, batch, length);
        var (dense, sparse, colbert) = new DoubleReferenceM3(source.Config, source.Weights).Forward(ids, mask, batch, length);

        int d = source.Config.HiddenSize, c = encoder.Manifest.ColbertDim;
        Assert.Equal(batch * d, outputs.DenseVecs.Length);
        Assert.Equal(batch * length, outputs.SparseWeights.Length);
        Assert.Equal(batch * (length - 1) * c, outputs.ColbertVecs.Length);
        double denseDiff = MaxDiff(outputs.DenseVecs, dense.SelectMany(r => r));
        double sparseDiff = MaxDiff(outputs.SparseWeights, sparse.SelectMany(r => r));
        double colbertDiff = MaxDiff(outputs.ColbertVecs, colbert.SelectMany(r => r.SelectMany(v => v)));
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{precision} batch {batch} length {length}: max abs diff dense {denseDiff:E2}, sparse {sparseDiff:E2}, colbert {colbertDiff:E2}");
        double tolerance = precision == OnnxPrecision.Fp32 ? 1e-4 : 2e-2;
        Assert.InRange(denseDiff, 0, tolerance);
        Assert.InRange(sparseDiff, 0, tolerance);
        Assert.InRange(colbertDiff, 0, tolerance);

        for (int b = 0; b < batch; b++)
        {
            // Padded ColBERT rows are exactly zero, and so is every special id's sparse weight.
            for (int t = 1; t < length; t++)
                if (mask[b * length + t] == 0)
                    Assert.All(outputs.ColbertVecs.AsSpan(((b * (length - 1)) + t - 1) * c, c).ToArray(), v => Assert.Equal(0f, v));
            for (int t = 0; t < length; t++)
                if (ids[b * length + t] <= 3)
                    Assert.Equal(0f, outputs.SparseWeights[b * length + t]);
        }
    }

    [Fact]
    public void EncodeReturnsInputOrderWithFlagEmbeddingPostprocessing()
    {
        using var temp = TinyM3.Temp();
        var source = Source.Value;
        M3OnnxExporter.Export(source, temp.Sub("onnx"), new OnnxExportOptions());
        using var encoder = OnnxM3Encoder.Open(temp.Sub("onnx"), intraOpThreads: 1);
        int length = 12, batch = 4;
        var (ids, mask) = OnnxTestBatches.Make(batch, length, source.Config.VocabSize, seed: 7);
        var texts = Enumerable.Range(0, batch)
            .Select(b => ids.AsSpan(b * length, length).ToArray().Where((_, t) => mask[b * length + t] == 1).Select(id => (int)id).ToArray())
            .ToArray();

        var encodings = encoder.Encode(texts, batchSize: 3);
        var (dense, sparse, colbert) = new DoubleReferenceM3(source.Config, source.Weights).Forward(ids, mask, batch, length);

        for (int b = 0; b < batch; b++)
        {
            Assert.InRange(MaxDiff(encodings[b].Dense, dense[b]), 0, 1e-4);
            Assert.Equal(texts[b].Length - 1, encodings[b].ColbertVecs.Length);
            Assert.InRange(MaxDiff(encodings[b].ColbertVecs.SelectMany(r => r), colbert[b].Take(texts[b].Length - 1).SelectMany(r => r)), 0, 1e-4);
            var expected = new Dictionary<int, double>();
            for (int t = 0; t < texts[b].Length; t++)
            {
                int id = texts[b][t];
                if (id <= 3 || sparse[b][t] <= 0) continue;
                expected[id] = Math.Max(expected.GetValueOrDefault(id), sparse[b][t]);
            }
            Assert.Equal(expected.Keys.Order(), encodings[b].LexicalWeights.Keys.Order());
            foreach (var (id, w) in expected)
                Assert.InRange(Math.Abs(encodings[b].LexicalWeights[id] - w), 0, 1e-4);
        }
    }

    [Fact]
    public void ModelFileUsesOnlyStandardOperatorsAndNamedDynamicIo()
    {
        using var temp = TinyM3.Temp();
        var result = M3OnnxExporter.Export(Source.Value, temp.Sub("onnx"), new OnnxExportOptions());
        var model = ModelProto.Parser.ParseFromFile(result.ModelPath);

        Assert.Equal(8, model.IrVersion);
        var opset = Assert.Single(model.OpsetImport);
        Assert.Equal("", opset.Domain);
        Assert.Equal(17, opset.Version);
        Assert.All(model.Graph.Node, n => Assert.Equal("", n.Domain));
        Assert.Equal(["input_ids", "attention_mask"], model.Graph.Input.Select(i => i.Name));
        Assert.All(model.Graph.Input, i =>
        {
            Assert.Equal((int)TensorProto.Types.DataType.Int64, i.Type.TensorType.ElemType);
            Assert.Equal(["batch", "sequence"], i.Type.TensorType.Shape.Dim.Select(x => x.DimParam));
        });
        Assert.Equal(["dense_vecs", "sparse_weights", "colbert_vecs"], model.Graph.Output.Select(o => o.Name));
        Assert.All(model.Graph.Output, o => Assert.Equal((int)TensorProto.Types.DataType.Float, o.Type.TensorType.ElemType));
        Assert.Null(result.ExternalDataPath);
        Assert.All(model.Graph.Initializer, t => Assert.Equal(TensorProto.Types.DataLocation.Default, t.DataLocation));
        Assert.True(File.Exists(Path.Combine(temp.Sub("onnx"), "sentencepiece.bpe.model")));

        var manifest = OnnxManifest.Read(temp.Sub("onnx"));
        Assert.Equal("fp32", manifest.Precision);
        Assert.Equal(Source.Value.Config.HiddenSize, manifest.Config.HiddenSize);
        Assert.Equal(Source.Value.Config.MaxTokens, manifest.MaxLength);
        Assert.Equal(["dense_vecs", "sparse_weights", "colbert_vecs"], manifest.Outputs);
        Assert.Equal(Path.GetFullPath(TinyM3.ModelDir), manifest.SourceCheckpoint);
        TestContext.Current.TestOutputHelper?.WriteLine($"model.onnx {result.ModelBytes} bytes");
    }

    [Fact]
    public void ForcedExternalDataLoadsAndGivesTheSameOutputs()
    {
        using var temp = TinyM3.Temp();
        var source = Source.Value;
        var inline = M3OnnxExporter.Export(source, temp.Sub("inline"), new OnnxExportOptions());
        var external = M3OnnxExporter.Export(source, temp.Sub("external"), new OnnxExportOptions { ForceExternalData = true });

        Assert.NotNull(external.ExternalDataPath);
        Assert.Equal("model.onnx.data", external.Manifest.ExternalDataFile);
        var model = ModelProto.Parser.ParseFromFile(external.ModelPath);
        var moved = model.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External).ToList();
        Assert.Contains(moved, t => t.Name == "embeddings.word_embeddings.weight");
        foreach (var tensor in moved)
        {
            var entries = tensor.ExternalData.ToDictionary(e => e.Key, e => e.Value);
            Assert.Equal("model.onnx.data", entries["location"]);
            Assert.Equal(0, long.Parse(entries["offset"]) % 65536);
            Assert.True(tensor.RawData.IsEmpty);
        }
        Assert.All(model.Graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Int64),
            t => Assert.Equal(TensorProto.Types.DataLocation.Default, t.DataLocation));
        Assert.True(external.ModelBytes < inline.ModelBytes / 4);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"inline model.onnx {inline.ModelBytes} bytes; external model.onnx {external.ModelBytes} + model.onnx.data {external.ExternalDataBytes} bytes");

        var (ids, mask) = OnnxTestBatches.Make(4, 20, source.Config.VocabSize, seed: 3);
        using var a = OnnxM3Encoder.Open(temp.Sub("inline"), intraOpThreads: 1);
        using var b = OnnxM3Encoder.Open(temp.Sub("external"), intraOpThreads: 1);
        var x = a.Run(ids, mask, 4, 20);
        var y = b.Run(ids, mask, 4, 20);
        Assert.Equal(x.DenseVecs, y.DenseVecs);
        Assert.Equal(x.SparseWeights, y.SparseWeights);
        Assert.Equal(x.ColbertVecs, y.ColbertVecs);
    }

    [Theory]
    [InlineData(18)]
    [InlineData(OnnxExportOptions.MaxOpset)]
    public void NewerOpsetsLoadAndAgreeWithOpset17(int opset)
    {
        using var temp = TinyM3.Temp();
        var source = Source.Value;
        M3OnnxExporter.Export(source, temp.Sub("17"), new OnnxExportOptions());
        var newer = M3OnnxExporter.Export(source, temp.Sub("newer"), new OnnxExportOptions { Opset = opset });
        Assert.Equal(opset, ModelProto.Parser.ParseFromFile(newer.ModelPath).OpsetImport.Single().Version);

        var (ids, mask) = OnnxTestBatches.Make(2, 9, source.Config.VocabSize, seed: 5);
        using var a = OnnxM3Encoder.Open(temp.Sub("17"), intraOpThreads: 1);
        using var b = OnnxM3Encoder.Open(temp.Sub("newer"), intraOpThreads: 1);
        Assert.InRange(MaxDiff(a.Run(ids, mask, 2, 9).ColbertVecs, b.Run(ids, mask, 2, 9).ColbertVecs.Select(v => (double)v)), 0, 1e-6);
    }

    [Fact]
    public void OpsetOlderThan17IsRefused()
    {
        using var temp = TinyM3.Temp();
        var e = Assert.Throws<M3OnnxException>(() => M3OnnxExporter.Export(Source.Value, temp.Sub("onnx"), new OnnxExportOptions { Opset = 16 }));
        Assert.Contains("opset 16 is too old", e.Message);
        Assert.False(Directory.Exists(temp.Sub("onnx")));
    }

    [Fact]
    public void ExistingOutputFolderNeedsForce()
    {
        using var temp = TinyM3.Temp();
        Directory.CreateDirectory(temp.Sub("onnx"));
        File.WriteAllText(Path.Combine(temp.Sub("onnx"), "notes.txt"), "keep");
        var e = Assert.Throws<M3OnnxException>(() => M3OnnxExporter.Export(Source.Value, temp.Sub("onnx"), new OnnxExportOptions()));
        Assert.Contains("exists (use --force to overwrite)", e.Message);

        M3OnnxExporter.Export(Source.Value, temp.Sub("onnx"), new OnnxExportOptions { Force = true, ForceExternalData = true });
        M3OnnxExporter.Export(Source.Value, temp.Sub("onnx"), new OnnxExportOptions { Force = true });
        Assert.False(File.Exists(Path.Combine(temp.Sub("onnx"), "model.onnx.data")), "a stale external data file is removed");
        Assert.True(File.Exists(Path.Combine(temp.Sub("onnx"), "notes.txt")), "files the export did not write are kept");
    }

    [Fact]
    public void WeightsWithoutHeadsOrWithWrongShapesAreRefused()
    {
        using var temp = TinyM3.Temp();
        var source = Source.Value;
        var noHeads = source with { Weights = source.Weights.Where(kv => !kv.Key.StartsWith("colbert_linear.")).ToDictionary() };
        var e = Assert.Throws<M3OnnxException>(() => M3OnnxExporter.Export(noHeads, temp.Sub("a"), new OnnxExportOptions()));
        Assert.Contains("without heads", e.Message);
        Assert.False(Directory.Exists(temp.Sub("a")), "nothing is written for weights that cannot be exported");

        var wrong = source.Weights.ToDictionary();
        wrong["encoder.layer.0.attention.self.query.weight"] = new OnnxWeight(new float[32], [1, 32]);
        wrong["encoder.layer.9.output.dense.weight"] = new OnnxWeight(new float[1], [1]);
        e = Assert.Throws<M3OnnxException>(() => M3OnnxExporter.Export(source with { Weights = wrong }, temp.Sub("b"), new OnnxExportOptions()));
        Assert.Contains("'encoder.layer.0.attention.self.query.weight' has shape [1, 32]", e.Message);
        Assert.Contains("unexpected 'encoder.layer.9.output.dense.weight'", e.Message);
    }

    /// <summary>
    /// An independent consumer's view: the onnx package's checker and strict shape inference, on the inline and the
    /// external-data model. Runs where Debian's python3-onnx is installed (apt-get install python3-onnx).
    /// </summary>
    [Fact]
    public void OnnxCheckerAndStrictShapeInferenceAcceptTheModel()
    {
        if (!PythonOnnx.Available(out string reason)) Assert.Skip(reason);
        using var temp = TinyM3.Temp();
        foreach (var (name, options) in new[]
                 {
                     ("fp32", new OnnxExportOptions()),
                     ("fp16-external", new OnnxExportOptions { Precision = OnnxPrecision.Fp16, ForceExternalData = true }),
                 })
        {
            var result = M3OnnxExporter.Export(Source.Value, temp.Sub(name), options);
            string output = PythonOnnx.CheckAndInferShapes(result.ModelPath);
            TestContext.Current.TestOutputHelper?.WriteLine($"{name}: {output}");
            Assert.Contains("dense_vecs", output);
        }
    }

    static double MaxDiff(IEnumerable<float> actual, IEnumerable<double> expected)
    {
        var a = actual.ToArray();
        var e = expected.ToArray();
        Assert.Equal(e.Length, a.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - e[i]));
        return max;
    }

    static double MaxDiff(IEnumerable<float> actual, IEnumerable<float> expected) => MaxDiff(actual, expected.Select(v => (double)v));
}
