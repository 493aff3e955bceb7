using System.Text.Json;
using M3Train.Checkpoints;
using M3Train.Eval;
using M3Train.Model;
using M3Train.Text;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Eval;

/// <summary>
/// <see cref="M3TextInference"/> against FlagEmbedding's <c>M3Embedder.encode</c> and <c>compute_score</c> on the
/// reference checkpoint (m3_encode.json / .safetensors): texts, max_length, pairs and weights come from the file.
/// </summary>
public class M3TextInferenceGoldenTests
{
    const float Tolerance = 1e-5f;

    static readonly Lazy<(M3Checkpoint Checkpoint, M3TextInference Inference)> Reference = new(() =>
    {
        var checkpoint = M3Checkpoint.Load(GoldenFolder.ReferenceCheckpoint);
        var tokenizer = XlmrTokenizer.FromFolder(GoldenFolder.ReferenceCheckpoint);
        return (checkpoint, new M3TextInference(checkpoint.Model, tokenizer, CPU));
    });

    static JsonElement Json => JsonDocument.Parse(File.ReadAllText(GoldenFolder.File("m3_encode.json"))).RootElement;

    static List<string> Texts(JsonElement json) => json.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();

    [Fact]
    public void EncodeMatchesDenseLexicalAndColbert()
    {
        var json = Json;
        var texts = Texts(json);
        var ours = Reference.Value.Inference.Encode(texts, json.GetProperty("max_length").GetInt32(), dense: true, lexical: true, colbert: true);
        using var scope = NewDisposeScope();
        var golden = GoldenFolder.Tensors("m3_encode.safetensors");
        var expectedLexical = json.GetProperty("lexical_weights").EnumerateArray().ToList();

        for (int i = 0; i < texts.Count; i++)
        {
            AssertClose($"dense_vecs[{i}]", golden["dense_vecs"][i].data<float>().ToArray(), ours[i].Dense!);
            var colbert = golden[$"colbert_vecs.{i}"];
            Assert.Equal(colbert.shape[0], ours[i].ColbertVectors!.Length);
            for (int t = 0; t < ours[i].ColbertVectors!.Length; t++)
                AssertClose($"colbert_vecs.{i}[{t}]", colbert[t].data<float>().ToArray(), ours[i].ColbertVectors![t]);

            var expected = expectedLexical[i].EnumerateObject().ToDictionary(p => int.Parse(p.Name), p => p.Value.GetSingle());
            Assert.Equal(expected.Keys.Order(), ours[i].LexicalWeights!.Keys.Order());
            foreach (var (id, w) in expected)
                Assert.True(Math.Abs(w - ours[i].LexicalWeights![id]) <= Tolerance, $"lexical_weights[{i}][{id}]: {w} vs {ours[i].LexicalWeights![id]}");
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"dense/colbert max |Δ| = {Worst:E3}");
        // FlagEmbedding's single-pair helpers on the first two texts.
        var (a, b) = (ours[0], ours[1]);
        float lexical = a.LexicalWeights!.Where(kv => b.LexicalWeights!.ContainsKey(kv.Key)).Sum(kv => kv.Value * b.LexicalWeights![kv.Key]);
        Assert.Equal(json.GetProperty("lexical_matching_0_1").GetSingle(), lexical, Tolerance);
        using var q = tensor(a.ColbertVectors!.SelectMany(r => r).ToArray()).view(1, a.ColbertVectors!.Length, -1);
        using var p = tensor(b.ColbertVectors!.SelectMany(r => r).ToArray()).view(1, b.ColbertVectors!.Length, -1);
        float colbertScore = M3Scores.ColbertPairs(q, ones(1, q.shape[1]), p).item<float>();
        Assert.Equal(json.GetProperty("colbert_score_0_1").GetSingle(), colbertScore, Tolerance);
    }

    [Fact]
    public void ComputeScoreMatchesEveryOutput()
    {
        var json = Json;
        var pairs = json.GetProperty("pairs").EnumerateArray().Select(p => (p[0].GetString()!, p[1].GetString()!)).ToList();
        var w = json.GetProperty("weights_for_different_modes").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        var ours = Reference.Value.Inference.ComputeScores(pairs, new M3ScoreWeights(w[0], w[1], w[2]));
        var expected = json.GetProperty("compute_score");
        var byName = new Dictionary<string, Func<M3PairScores, float>>
        {
            ["dense"] = s => s.Dense,
            ["sparse"] = s => s.Sparse,
            ["colbert"] = s => s.Colbert,
            ["sparse+dense"] = s => s.SparseDense,
            ["colbert+sparse+dense"] = s => s.ColbertSparseDense,
        };
        Assert.Equal(byName.Keys.Order(), expected.EnumerateObject().Select(p => p.Name).Order());
        foreach (var (name, pick) in byName)
        {
            var values = expected.GetProperty(name).EnumerateArray().Select(v => v.GetSingle()).ToList();
            Assert.Equal(pairs.Count, values.Count);
            TestContext.Current.TestOutputHelper?.WriteLine($"{name}: max |Δ| = {values.Select((v, i) => Math.Abs(v - pick(ours[i]))).Max():E3}");
            for (int i = 0; i < pairs.Count; i++)
                Assert.True(Math.Abs(values[i] - pick(ours[i])) <= Tolerance, $"{name}[{i}]: {values[i]} vs {pick(ours[i])}");
        }
    }

    static float Worst;

    static void AssertClose(string name, float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float max = expected.Zip(actual, (x, y) => Math.Abs(x - y)).Max();
        Worst = Math.Max(Worst, max);
        Assert.True(max <= Tolerance, $"{name}: max |Δ| = {max:E3}");
    }
}
