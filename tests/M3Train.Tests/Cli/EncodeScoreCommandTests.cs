using System.CommandLine;
using System.Text.Json;
using M3Train.Cli;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Cli;

/// <summary><c>m3train encode</c> and <c>m3train score</c> on the reference checkpoint, against FlagEmbedding's m3_encode values.</summary>
public sealed class EncodeScoreCommandTests : IDisposable
{
    const float Tolerance = 1e-5f;
    readonly string _root = Directory.CreateTempSubdirectory("m3cli-").FullName;
    static JsonElement Golden => JsonDocument.Parse(File.ReadAllText(GoldenFolder.File("m3_encode.json"))).RootElement;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    static int Invoke(params string[] args) =>
        Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });

    [Theory]
    [InlineData("texts.txt")]
    [InlineData("texts.jsonl")]
    public void EncodeWritesFlagEmbeddingsRepresentationsInInputOrder(string inputName)
    {
        var golden = Golden;
        var texts = golden.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        string input = Path.Combine(_root, inputName);
        File.WriteAllLines(input, inputName.EndsWith(".jsonl") ? texts.Select(t => JsonSerializer.Serialize(new { text = t })) : texts);
        string output = Path.Combine(_root, "out", "encoded.jsonl");

        Assert.Equal(0, Invoke("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", output,
            "--dense", "--sparse", "--colbert", "--max-length", golden.GetProperty("max_length").GetRawText(), "--batch-size", "3"));

        var lines = File.ReadAllLines(output);
        Assert.Equal(texts.Count, lines.Length);
        using var scope = NewDisposeScope();
        var tensors = GoldenFolder.Tensors("m3_encode.safetensors");
        var lexical = golden.GetProperty("lexical_weights").EnumerateArray().ToList();
        for (int i = 0; i < lines.Length; i++)
        {
            var row = JsonDocument.Parse(lines[i]).RootElement;
            AssertClose(tensors["dense_vecs"][i].data<float>().ToArray(), Floats(row.GetProperty("dense")));
            var colbert = row.GetProperty("colbert").EnumerateArray().ToList();
            Assert.Equal(tensors[$"colbert_vecs.{i}"].shape[0], colbert.Count);
            AssertClose(tensors[$"colbert_vecs.{i}"].flatten().data<float>().ToArray(), colbert.SelectMany(Floats).ToArray());
            var expected = lexical[i].EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetSingle());
            var actual = row.GetProperty("lexical_weights").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetSingle());
            Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
            Assert.All(expected, kv => Assert.Equal(kv.Value, actual[kv.Key], Tolerance));
        }
    }

    [Fact]
    public void OnnxBackendWritesWhatTheTorchBackendWrites()
    {
        var golden = Golden;
        var texts = golden.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToList();
        string input = Path.Combine(_root, "texts.txt");
        File.WriteAllLines(input, texts);
        string exported = Path.Combine(_root, "onnx");
        Assert.Equal(0, Invoke("export-onnx", "--model", GoldenFolder.ReferenceCheckpoint, "--output", exported));

        string maxLength = golden.GetProperty("max_length").GetRawText();
        string torchOut = Path.Combine(_root, "torch.jsonl"), onnxOut = Path.Combine(_root, "onnx.jsonl");
        Assert.Equal(0, Invoke("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", torchOut,
            "--dense", "--sparse", "--colbert", "--max-length", maxLength));
        Assert.Equal(0, Invoke("encode", "--backend", "onnx", "--model", exported, "--input", input, "--output", onnxOut,
            "--dense", "--sparse", "--colbert", "--max-length", maxLength));

        var a = File.ReadAllLines(torchOut);
        var b = File.ReadAllLines(onnxOut);
        Assert.Equal(texts.Count, b.Length);
        for (int i = 0; i < a.Length; i++)
        {
            var x = JsonDocument.Parse(a[i]).RootElement;
            var y = JsonDocument.Parse(b[i]).RootElement;
            Assert.Equal(x.EnumerateObject().Select(p => p.Name), y.EnumerateObject().Select(p => p.Name));
            AssertClose(Floats(x.GetProperty("dense")), Floats(y.GetProperty("dense")), 1e-4f);
            AssertClose(x.GetProperty("colbert").EnumerateArray().SelectMany(Floats).ToArray(),
                        y.GetProperty("colbert").EnumerateArray().SelectMany(Floats).ToArray(), 1e-4f);
            var lx = x.GetProperty("lexical_weights").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetSingle());
            var ly = y.GetProperty("lexical_weights").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetSingle());
            Assert.Equal(lx.Keys.Order(), ly.Keys.Order());
            Assert.All(lx, kv => Assert.Equal(kv.Value, ly[kv.Key], 1e-4f));
        }
    }

    [Fact]
    public void EncodeWritesOnlyDenseByDefault()
    {
        string input = Path.Combine(_root, "one.txt");
        File.WriteAllText(input, "Dense retrieval maps queries and passages into one shared vector space.\n");
        string output = Path.Combine(_root, "one.jsonl");
        Assert.Equal(0, Invoke("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", output));
        var row = JsonDocument.Parse(File.ReadAllLines(output).Single()).RootElement;
        Assert.Equal(["dense"], row.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void ScoreWritesEveryComputeScoreOutput()
    {
        var golden = Golden;
        var pairs = golden.GetProperty("pairs").EnumerateArray().ToList();
        string input = Path.Combine(_root, "pairs.jsonl");
        File.WriteAllLines(input, pairs.Select(p => JsonSerializer.Serialize(new { query = p[0].GetString(), passage = p[1].GetString() })));
        string weights = string.Join(",", golden.GetProperty("weights_for_different_modes").EnumerateArray().Select(w => w.GetRawText()));
        string output = Path.Combine(_root, "scores.jsonl");

        Assert.Equal(0, Invoke("score", "--model", GoldenFolder.ReferenceCheckpoint, "--pairs", input, "--weights", weights, "--output", output));

        Assert.Contains("\"sparse+dense\":", File.ReadAllText(output));
        var rows = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(pairs.Count, rows.Count);
        foreach (var mode in golden.GetProperty("compute_score").EnumerateObject())
        {
            var expected = Floats(mode.Value);
            for (int i = 0; i < rows.Count; i++)
                Assert.Equal(expected[i], rows[i].GetProperty(mode.Name).GetSingle(), Tolerance);
        }
    }

    [Fact]
    public void BadPairsLineIsNamed()
    {
        string input = Path.Combine(_root, "bad.jsonl");
        File.WriteAllLines(input, ["{\"query\": \"q\", \"passage\": \"p\"}", "{\"query\": \"q\"}"]);
        var error = Assert.Throws<M3TrainException>(() =>
            Invoke("score", "--model", GoldenFolder.ReferenceCheckpoint, "--pairs", input, "--output", Path.Combine(_root, "x.jsonl")));
        Assert.Contains($"{input}:2", error.Message);
        Assert.Contains("passage", error.Message);
    }

    static float[] Floats(JsonElement array) => array.EnumerateArray().Select(v => v.GetSingle()).ToArray();

    static void AssertClose(float[] expected, float[] actual) => AssertClose(expected, actual, Tolerance);

    static void AssertClose(float[] expected, float[] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        float max = expected.Zip(actual, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(max <= tolerance, $"max |Δ| = {max:E3}");
    }
}
