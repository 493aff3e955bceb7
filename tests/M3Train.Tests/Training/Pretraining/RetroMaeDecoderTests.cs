using M3Train.Checkpoints;
using M3Train.Model;
using M3Train.Tests.Checkpoints;
using M3Train.Training;
using M3Train.Training.Pretraining;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Pretraining;

[Collection(SerilogCaptureCollection.Name)]
public sealed class RetroMaeDecoderTests
{
    [Fact]
    public void ARowIsReconstructedWithoutItsOwnTokenAndWithoutHiddenOnes()
    {
        var config = XlmRobertaConfig.Tiny();
        using var encoder = new XlmRobertaModel(config);
        using var decoder = new RetroMaeDecoder(config, encoder.Embeddings, initSeed: 3);
        decoder.eval();
        encoder.eval();
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

    [Fact]
    public void TheDecoderOwnsOneLayerAndTrainsTheEncodersEmbeddings()
    {
        var config = XlmRobertaConfig.Tiny();
        using var encoder = new XlmRobertaModel(config);
        using var decoder = new RetroMaeDecoder(config, encoder.Embeddings, initSeed: 3);
        using var layerOnly = new RetroMaeDecoderLayer(config, new ComputeSettings());

        // No embedding parameter of its own: exactly the parameters of one decoder layer.
        var names = decoder.named_parameters().Select(p => p.name).ToList();
        Assert.All(names, n => Assert.StartsWith("layer.", n));
        Assert.Equal(layerOnly.parameters().Sum(p => p.numel()), decoder.parameters().Sum(p => p.numel()));

        // The decoder's own reading of the text (not the sentence embedding, which is detached here) reaches the
        // encoder's word and position tables.
        using var ids = tensor(new long[] { 0, 10, 11, 12, 13, 14, 15, 2 }, [1, 8]);
        using var mask = ones(1, 8, dtype: ScalarType.Int64);
        using var generator = new Generator(5, CPU);
        using var visible = EnhancedDecodingMask.Build(mask, 0.5, MaskSampling.Exact, generator);
        using var cls = zeros(1, config.HiddenSize);
        using var random = new Generator(7, CPU);
        using var weights = randn(1, 8, config.HiddenSize, generator: random);
        // A weighted sum: the plain sum of a LayerNorm's output does not depend on its input.
        (decoder.forward(cls, ids, visible) * weights).sum().backward();
        var grads = encoder.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        using var positionGrad = grads["embeddings.position_embeddings.weight"]!;
        using var wordGrad = grads["embeddings.word_embeddings.weight"]!;
        Assert.True(positionGrad[9].abs().sum().item<float>() > 0, "no gradient on the last position row the text uses");
        Assert.True(wordGrad[15].abs().sum().item<float>() > 0, "no gradient on a word row the text uses");
    }

    [Fact]
    public void ADecoderSavedWithItsOwnEmbeddingsLoadsWithAWarningThatDropsThem()
    {
        var config = XlmRobertaConfig.Tiny();
        using var encoder = new XlmRobertaModel(config);
        using var saved = new RetroMaeDecoder(config, encoder.Embeddings, initSeed: 3);
        string folder = Path.Combine(Path.GetTempPath(), "m3-decoder-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            // The layout decoders were saved in when they carried a copy of the embedding tables.
            string old = Path.Combine(folder, RetroMaeDecoder.FileName);
            var tensors = saved.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter))
                .Concat(encoder.named_parameters().Where(p => p.name.StartsWith("embeddings.", StringComparison.Ordinal))
                    .Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)))
                .ToList();
            SafetensorsFile.Write(old, tensors);

            using var loaded = new RetroMaeDecoder(config, encoder.Embeddings, initSeed: 4);
            using (var log = new LogCapture())
            {
                loaded.Load(old);
                Assert.Contains(log.Warnings, w => w.Contains("embeddings.word_embeddings.weight") && w.Contains("dropping"));
            }
            Assert.All(saved.parameters().Zip(loaded.parameters()), p => Assert.True(p.First.equal(p.Second).all().item<bool>()));

            // Any other key the decoder does not have is still an error.
            string wrong = Path.Combine(folder, "wrong.safetensors");
            SafetensorsFile.Write(wrong, [.. tensors, new KeyValuePair<string, Tensor>("pooler.dense.bias", zeros(config.HiddenSize))]);
            var error = Assert.Throws<M3TrainException>(() => loaded.Load(wrong));
            Assert.Contains("pooler.dense.bias", error.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
