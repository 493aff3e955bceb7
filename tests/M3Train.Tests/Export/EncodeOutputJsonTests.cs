using M3Train.Text;

using System.Text.Json;
using M3Train.Onnx;
using Xunit;

namespace M3Train.Tests.Export;

public sealed class EncodeOutputJsonTests
{
    static readonly M3Encoding Sample = new(
        [0.1f, -0.25f, 1f / 3],
        new Dictionary<int, float> { [896] = 0.6976849f, [4] = 0.33f },
        [[0.6f, 0.8f], [1e-8f, -1f]]);

    [Fact]
    public void AllPartsRoundTripExactly()
    {
        string line = EncodeOutputJson.Format(Sample, EncodingParts.All);
        Assert.DoesNotContain('\n', line);
        using var json = JsonDocument.Parse(line);
        var root = json.RootElement;
        Assert.Equal(["dense", "lexical_weights", "colbert"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(Sample.Dense, root.GetProperty("dense").EnumerateArray().Select(v => v.GetSingle()));
        Assert.Equal(["896", "4"], root.GetProperty("lexical_weights").EnumerateObject().Select(p => p.Name));
        Assert.Equal(0.6976849f, root.GetProperty("lexical_weights").GetProperty("896").GetSingle());
        var colbert = root.GetProperty("colbert").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        Assert.Equal(Sample.ColbertVecs, colbert);
    }

    [Fact]
    public void OnlyRequestedPartsAreWritten()
    {
        using var json = JsonDocument.Parse(EncodeOutputJson.Format(Sample, EncodingParts.Lexical | EncodingParts.Colbert));
        Assert.Equal(["lexical_weights", "colbert"], json.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal("{\"dense\":[0.1,-0.25,0.33333334]}", EncodeOutputJson.Format(Sample, EncodingParts.Dense));
    }

    [Fact]
    public void LexicalWeightsFollowFlagEmbeddingInference()
    {
        long[] ids = [0, 7, 3, 7, 9, 2, 1, 1];
        float[] weights = [0.9f, 0.2f, 0.8f, 0.5f, 0f, 0.7f, 0.4f, 0.4f];
        var result = LexicalWeights.FromTokenWeights(ids, weights, [0, 1, 2, 3]);
        Assert.Equal(new Dictionary<int, float> { [7] = 0.5f }, result);
    }
}
