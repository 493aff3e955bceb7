using M3Train.Eval;
using M3Train.Model;
using M3Train.Text;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Eval;

public class TorchM3InferenceTests
{
    [Fact]
    public void BatchedEncodingEqualsTheModelOnEachTextAlone()
    {
        using var inference = TinyInference.Load(batchSize: 4);
        // Texts of very different lengths, so batches are sorted and padded; one is cut at the 40-token limit.
        string[] texts = [.. TinyInference.SampleSet().Corpus.Take(9).Select(d => d.Text), "short", "two words", "Ünïcödé ∑ text 北京"];
        var encoded = inference.Encode(texts, 40, EncodingParts.All);
        Assert.Equal(EncodingParts.All, encoded.Parts);
        var special = inference.Model.Config.UnusedLexicalIds.ToHashSet();

        using var noGrad = no_grad();
        for (int i = 0; i < texts.Length; i++)
        {
            int[] ids = inference.Tokenizer.Encode(texts[i], 40);
            using var input = tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length]);
            using var reps = inference.Model.Encode(input, ones_like(input));
            float[] dense = reps.Dense.data<float>().ToArray();
            Assert.Equal(dense.Length, encoded.DenseDim);
            for (int j = 0; j < dense.Length; j++) Assert.Equal(dense[j], encoded.DenseOf(i)[j], 1e-5f);

            float[] weights = reps.TokenWeights!.data<float>().ToArray();
            var lexical = new Dictionary<int, float>();
            for (int t = 0; t < ids.Length; t++)
                if (weights[t] > 0 && !special.Contains(ids[t]))
                    lexical[ids[t]] = Math.Max(lexical.GetValueOrDefault(ids[t]), weights[t]);
            Assert.Equal(lexical.Keys.Order(), encoded.Lexical[i].Keys.Order());
            foreach (var (id, w) in lexical) Assert.Equal(w, encoded.Lexical[i][id], 1e-5f);

            float[] colbert = reps.ColbertVectors!.data<float>().ToArray(); // [1, L-1, D'], no padding
            Assert.Equal(ids.Length - 1, encoded.ColbertTokens(i));
            var cached = encoded.ColbertOf(i);
            Assert.Equal(colbert.Length, cached.Length);
            for (int j = 0; j < colbert.Length; j++) Assert.Equal(colbert[j], cached[j], 1e-5f);
        }
    }

    [Fact]
    public void OnlyTheRequestedPartsAreKept()
    {
        using var inference = TinyInference.Load();
        var dense = inference.Encode(["a", "b c"], 16, EncodingParts.Dense);
        Assert.Equal(2 * dense.DenseDim, dense.Dense.Length);
        Assert.Empty(dense.Lexical);
        Assert.Empty(dense.ColbertData);
        var lexical = inference.Encode(["a", "b c"], 16, EncodingParts.Lexical);
        Assert.Empty(lexical.Dense);
        Assert.Equal(2, lexical.Lexical.Length);
    }

    [Fact]
    public void LengthsBeyondThePositionTableAreCapped()
    {
        using var inference = TinyInference.Load();
        Assert.Equal(128, inference.MaxTokens); // max_position_embeddings 130 - (pad 1 + 1)
        string text = string.Join(" ", Enumerable.Repeat("many words", 200));
        Assert.Equal(inference.Encode([text], 128, EncodingParts.Dense).Dense, inference.Encode([text], 4096, EncodingParts.Dense).Dense);
        Assert.Equal(127, inference.Encode([text], 4096, EncodingParts.Colbert).ColbertTokens(0));
    }
}
