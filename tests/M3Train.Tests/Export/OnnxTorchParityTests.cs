using M3Train.Checkpoints;
using M3Train.Onnx;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Export;

/// <summary>The exported graph in ONNX Runtime against the TorchSharp <see cref="Model.M3Model"/> (fp32, eval) on the same checkpoint.</summary>
public sealed class OnnxTorchParityTests
{
    static readonly Lazy<OnnxExportSource> Source = new(TinyM3.Source);

    public static TheoryData<OnnxPrecision, int, int> Cases => OnnxExportTests.ParityCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void OnnxRuntimeMatchesTorchSharpModel(OnnxPrecision precision, int batch, int length)
    {
        using var temp = TinyM3.Temp();
        var source = Source.Value;
        M3OnnxExporter.Export(source, temp.Sub("onnx"), new OnnxExportOptions { Precision = precision });
        using var encoder = OnnxM3Encoder.Open(temp.Sub("onnx"), intraOpThreads: 1);
        var (ids, mask) = OnnxTestBatches.Make(batch, length, source.Config.VocabSize, seed: 1000 + batch * 100 + length);
        var onnx = encoder.Run(ids, mask, batch, length);

        using var checkpoint = M3Checkpoint.Load(TinyM3.ModelDir);
        checkpoint.Model.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var torchReps = checkpoint.Model.Encode(tensor(ids).reshape(batch, length), tensor(mask).reshape(batch, length));
        float[] Flat(Tensor t) => t.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();

        double dense = MaxDiff(onnx.DenseVecs, Flat(torchReps.Dense));
        double sparse = MaxDiff(onnx.SparseWeights, Flat(torchReps.TokenWeights!));
        double colbert = MaxDiff(onnx.ColbertVecs, Flat(torchReps.ColbertVectors!));
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{precision} batch {batch} length {length} vs TorchSharp: max abs diff dense {dense:E2}, sparse {sparse:E2}, colbert {colbert:E2}");
        double tolerance = precision == OnnxPrecision.Fp32 ? 1e-4 : 2e-2;
        Assert.InRange(dense, 0, tolerance);
        Assert.InRange(sparse, 0, tolerance);
        Assert.InRange(colbert, 0, tolerance);
    }

    static double MaxDiff(float[] a, float[] b)
    {
        Assert.Equal(b.Length, a.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }
}
