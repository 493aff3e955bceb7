using System.Text.Json;
using M3Train.Onnx;
using TorchSharp.PyBridge;
using Xunit;

namespace M3Train.Tests.Export;

/// <summary>
/// The exported model run by ONNX Runtime against the reference stack's numbers in the golden folder
/// (M3_GOLDEN_DIR or the project's copy): HF hidden states through the heads, and FlagEmbedding's encode.
/// </summary>
public sealed class OnnxGoldenTests
{
    static readonly Lazy<OnnxExportSource> Source = new(TinyM3.Source);

    public static TheoryData<OnnxPrecision> Precisions => new(OnnxPrecision.Fp32, OnnxPrecision.Fp16);

    static double Tolerance(OnnxPrecision precision) => precision == OnnxPrecision.Fp32 ? 1e-4 : 2e-2;

    /// <summary>
    /// The graph's outputs on the stored batch equal the M3 heads applied (in double) to HF's last_hidden_state of
    /// that batch, so the encoder inside the graph reproduces HF's hidden states, padding included.
    /// </summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void OutputsMatchHeadsOnHfHiddenStates(OnnxPrecision precision)
    {
        var stored = Safetensors.LoadStateDict(Path.Combine(TinyM3.GoldenDir, "hidden_states.safetensors"));
        var (ids, shape) = TinyM3.Int64s(stored["input_ids"]);
        var (mask, _) = TinyM3.Int64s(stored["attention_mask"]);
        var hidden = TinyM3.ToWeight(stored["last_hidden_state"]).Data;
        foreach (var t in stored.Values) t.Dispose();
        int batch = (int)shape[0], length = (int)shape[1];

        using var temp = TinyM3.Temp();
        var source = Source.Value;
        M3OnnxExporter.Export(source, temp.Sub("onnx"), new OnnxExportOptions { Precision = precision });
        using var encoder = OnnxM3Encoder.Open(temp.Sub("onnx"), intraOpThreads: 1);
        var outputs = encoder.Run(ids, mask, batch, length);

        int d = source.Config.HiddenSize, c = encoder.Manifest.ColbertDim;
        var colbertW = source.Weights["colbert_linear.weight"].Data;
        var colbertB = source.Weights["colbert_linear.bias"].Data;
        var sparseW = source.Weights["sparse_linear.weight"].Data;
        double sparseB = source.Weights["sparse_linear.bias"].Data[0];
        double dense = 0, sparse = 0, colbert = 0;
        for (int b = 0; b < batch; b++)
        {
            double[] Row(int t) => hidden.AsSpan((b * length + t) * d, d).ToArray().Select(v => (double)v).ToArray();
            double[] cls = Normalize(Row(0));
            for (int i = 0; i < d; i++) dense = Math.Max(dense, Math.Abs(outputs.DenseVecs[b * d + i] - cls[i]));
            for (int t = 0; t < length; t++)
            {
                double[] h = Row(t);
                double w = Math.Max(0, sparseB + Enumerable.Range(0, d).Sum(i => sparseW[i] * h[i]));
                if (source.Config.SpecialTokenIds.Contains((int)ids[b * length + t])) w = 0;
                sparse = Math.Max(sparse, Math.Abs(outputs.SparseWeights[b * length + t] - w));
                if (t == 0) continue;
                double[] v = Normalize(Enumerable.Range(0, c)
                    .Select(o => (colbertB[o] + Enumerable.Range(0, d).Sum(i => colbertW[o * d + i] * h[i])) * mask[b * length + t]).ToArray());
                for (int o = 0; o < c; o++)
                    colbert = Math.Max(colbert, Math.Abs(outputs.ColbertVecs[(b * (length - 1) + t - 1) * c + o] - v[o]));
            }
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{precision}, {batch}x{length}: max abs diff dense {dense:E2}, sparse {sparse:E2}, colbert {colbert:E2}");
        Assert.InRange(dense, 0, Tolerance(precision));
        Assert.InRange(sparse, 0, Tolerance(precision));
        Assert.InRange(colbert, 0, Tolerance(precision));
    }

    /// <summary>Texts in, FlagEmbedding's <c>M3Embedder.encode</c> out: dense vectors, ColBERT vectors and lexical weights.</summary>
    [Theory]
    [MemberData(nameof(Precisions))]
    public void EncodeMatchesFlagEmbedding(OnnxPrecision precision)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyM3.GoldenDir, "m3_encode.json")));
        string[] texts = json.RootElement.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        int maxLength = json.RootElement.GetProperty("max_length").GetInt32();
        var lexical = json.RootElement.GetProperty("lexical_weights").EnumerateArray()
            .Select(m => m.EnumerateObject().ToDictionary(p => int.Parse(p.Name), p => p.Value.GetDouble())).ToArray();
        var stored = Safetensors.LoadStateDict(Path.Combine(TinyM3.GoldenDir, "m3_encode.safetensors"));
        var dense = TinyM3.ToWeight(stored["dense_vecs"]);
        var colbert = texts.Select((_, i) => TinyM3.ToWeight(stored[$"colbert_vecs.{i}"])).ToArray();
        foreach (var t in stored.Values) t.Dispose();

        using var temp = TinyM3.Temp();
        M3OnnxExporter.Export(Source.Value, temp.Sub("onnx"), new OnnxExportOptions { Precision = precision });
        using var encoder = OnnxM3Encoder.Open(temp.Sub("onnx"), intraOpThreads: 1);
        var encodings = encoder.Encode(texts, batchSize: 4, maxLength: maxLength);

        int d = (int)dense.Shape[1];
        double denseDiff = 0, colbertDiff = 0, lexicalDiff = 0;
        for (int i = 0; i < texts.Length; i++)
        {
            var e = encodings[i];
            for (int k = 0; k < d; k++) denseDiff = Math.Max(denseDiff, Math.Abs(e.Dense[k] - dense.Data[i * d + k]));
            Assert.Equal(colbert[i].Shape[0], e.ColbertVecs.Length);
            int c = (int)colbert[i].Shape[1];
            for (int t = 0; t < e.ColbertVecs.Length; t++)
                for (int k = 0; k < c; k++)
                    colbertDiff = Math.Max(colbertDiff, Math.Abs(e.ColbertVecs[t][k] - colbert[i].Data[t * c + k]));
            if (precision == OnnxPrecision.Fp32)
                Assert.Equal(lexical[i].Keys.Order(), e.LexicalWeights.Keys.Order());
            foreach (int id in lexical[i].Keys.Union(e.LexicalWeights.Keys))
                lexicalDiff = Math.Max(lexicalDiff, Math.Abs(lexical[i].GetValueOrDefault(id) - e.LexicalWeights.GetValueOrDefault(id)));
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{precision}, {texts.Length} texts: max abs diff dense {denseDiff:E2}, colbert {colbertDiff:E2}, lexical {lexicalDiff:E2}");
        Assert.InRange(denseDiff, 0, Tolerance(precision));
        Assert.InRange(colbertDiff, 0, Tolerance(precision));
        Assert.InRange(lexicalDiff, 0, Tolerance(precision));
    }

    static double[] Normalize(double[] x)
    {
        double norm = Math.Sqrt(x.Sum(v => v * v));
        return x.Select(v => v / Math.Max(norm, 1e-12)).ToArray();
    }
}
