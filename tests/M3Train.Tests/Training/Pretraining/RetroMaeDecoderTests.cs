using M3Train.Model;
using M3Train.Training;
using M3Train.Training.Pretraining;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Pretraining;

public sealed class RetroMaeDecoderTests
{
    [Fact]
    public void ARowIsReconstructedWithoutItsOwnTokenAndWithoutHiddenOnes()
    {
        var config = XlmRobertaConfig.Tiny();
        using var decoder = new RetroMaeDecoder(config, initSeed: 3);
        decoder.eval();
        using var ids = tensor(new long[] { 0, 10, 11, 12, 13, 14, 15, 2 }, [1, 8]);
        using var mask = ones(1, 8, dtype: ScalarType.Int64);
        using var generator = new Generator(5, CPU);
        using var visible = EnhancedDecodingMask.Build(mask, 0.5, MaskSampling.Exact, generator);
        using var random = new Generator(9, CPU);
        using var cls = randn(1, config.HiddenSize, generator: random);
        using var noGrad = no_grad();
        using var reference = decoder.forward(cls, ids, visible);                                 // [1, 8, D]

        const int row = 4;
        var seen = visible[0, 0, row].data<bool>().ToArray();
        for (int t = 1; t < 8; t++)
        {
            using var changed = ids.clone();
            changed[0, t] = tensor(100L);
            using var output = decoder.forward(cls, changed, visible);
            bool same = output[0, row].allclose(reference[0, row], rtol: 0, atol: 1e-6);
            Assert.Equal(!seen[t], same);   // token t reaches row 4 only through its attention set
        }
        using var otherCls = randn(1, config.HiddenSize, generator: random);
        using var fromOther = decoder.forward(otherCls, ids, visible);
        Assert.False(fromOther[0, row].allclose(reference[0, row]), "the sentence embedding does not reach the row");
    }
}
