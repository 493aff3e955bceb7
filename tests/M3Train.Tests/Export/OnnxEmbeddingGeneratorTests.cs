using M3Train.Onnx;
using M3Train.Text;
using Microsoft.Extensions.AI;
using Xunit;

namespace M3Train.Tests.Export;

/// <summary>An exported model used as a .NET application would: through Microsoft.Extensions.AI's IEmbeddingGenerator.</summary>
public sealed class OnnxEmbeddingGeneratorTests : IDisposable
{
    static readonly string[] Texts = ["What is BGE-M3?", "BGE-M3 is a multilingual embedding model with dense, sparse and multi-vector outputs.", "Paris"];

    readonly TempFolder _temp = new();
    readonly string _export;

    public OnnxEmbeddingGeneratorTests()
    {
        _export = _temp.Sub("onnx");
        M3OnnxExporter.Export(TinyM3.Source(), _export, new OnnxExportOptions());
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task DenseVectorsComeThroughTheInterface()
    {
        using IEmbeddingGenerator<string, Embedding<float>> generator = OnnxM3EmbeddingGenerator.Open(_export);
        using var encoder = OnnxM3Encoder.Open(_export);
        var expected = encoder.Encode(Texts, parts: EncodingParts.Dense);

        var embeddings = await generator.GenerateAsync(Texts, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Texts.Length, embeddings.Count);
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(expected[i].Dense, embeddings[i].Vector.ToArray());
            Assert.Equal(1.0, Math.Sqrt(embeddings[i].Vector.ToArray().Sum(v => (double)v * v)), 1e-5);
        }
        Assert.Equal(encoder.Tokenizer.EncodeBatch(Texts, int.MaxValue).Sum(t => t.Length), embeddings.Usage!.InputTokenCount);
        var one = await generator.GenerateVectorAsync(Texts[1], cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(expected[1].Dense, one.ToArray());

        var metadata = generator.GetService<EmbeddingGeneratorMetadata>()!;
        Assert.Equal("M3Train", metadata.ProviderName);
        Assert.Equal(encoder.Manifest.Config.HiddenSize, metadata.DefaultModelDimensions);
    }

    [Fact]
    public async Task OtherDimensionsAreRefused()
    {
        using IEmbeddingGenerator<string, Embedding<float>> generator = OnnxM3EmbeddingGenerator.Open(_export);
        await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(Texts, new EmbeddingGenerationOptions { Dimensions = 3 }, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task SparseAndMultiVectorOutputsAreBesideIt()
    {
        using var generator = OnnxM3EmbeddingGenerator.Open(_export);
        var all = await generator.EncodeAsync(Texts, cancellationToken: TestContext.Current.CancellationToken);
        var expected = generator.Encoder.Encode(Texts);
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(expected[i].LexicalWeights, all[i].LexicalWeights);
            Assert.Equal(expected[i].ColbertVecs.Length, all[i].ColbertVecs.Length);
            Assert.NotEmpty(all[i].LexicalWeights);
        }
    }

    [Fact]
    public async Task ACancelledRequestStops()
    {
        using var generator = OnnxM3EmbeddingGenerator.Open(_export);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator.GenerateAsync(Texts, cancellationToken: cancelled.Token));
    }
}
