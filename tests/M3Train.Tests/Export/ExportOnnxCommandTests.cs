using System.CommandLine;
using M3Train.Cli;
using M3Train.Onnx;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit;

namespace M3Train.Tests.Export;

public sealed class ExportOnnxCommandTests
{
    static int Invoke(params string[] args) =>
        Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });

    [Theory]
    [InlineData("tiny-m3", "fp32")]
    [InlineData("tiny-m3-bin", "fp16")]
    public void ExportsSafetensorsAndPickleCheckpoints(string folder, string precision)
    {
        using var temp = TinyM3.Temp();
        string model = Path.Combine(TinyM3.GoldenDir, folder);
        Assert.Equal(0, Invoke("export-onnx", "--model", model, "--output", temp.Sub("onnx"), "--precision", precision, "--max-length", "64"));

        var manifest = OnnxManifest.Read(temp.Sub("onnx"));
        Assert.Equal(precision, manifest.Precision);
        Assert.Equal(64, manifest.MaxLength);
        Assert.Equal(17, manifest.Opset);
        using var encoder = OnnxM3Encoder.Open(temp.Sub("onnx"), intraOpThreads: 1);
        var e = encoder.Encode(["Dense retrieval maps queries and passages into one shared vector space."]).Single();
        Assert.Equal(manifest.Config.HiddenSize, e.Dense.Length);
        Assert.InRange(Math.Sqrt(e.Dense.Sum(v => (double)v * v)), 1 - 1e-3, 1 + 1e-3);
    }

    /// <summary>A masked-LM checkpoint (<c>roberta.</c> prefix, an LM head) exports the same model as the plain one.</summary>
    [Fact]
    public void RobertaPrefixedCheckpointExportsTheSameModel()
    {
        using var temp = TinyM3.Temp();
        string model = temp.Sub("mlm");
        Directory.CreateDirectory(model);
        foreach (string file in Directory.GetFiles(TinyM3.ModelDir).Where(f => Path.GetFileName(f) != "model.safetensors"))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        var state = Safetensors.LoadStateDict(Path.Combine(TinyM3.ModelDir, "model.safetensors"));
        var prefixed = state.ToDictionary(kv => "roberta." + kv.Key, kv => kv.Value);
        long d = state["embeddings.word_embeddings.weight"].shape[1], v = state["embeddings.word_embeddings.weight"].shape[0];
        prefixed["lm_head.dense.weight"] = torch.zeros(d, d);
        prefixed["lm_head.dense.bias"] = torch.zeros(d);
        prefixed["lm_head.layer_norm.weight"] = torch.ones(d);
        prefixed["lm_head.layer_norm.bias"] = torch.zeros(d);
        prefixed["lm_head.bias"] = torch.zeros(v);
        Safetensors.SaveStateDict(Path.Combine(model, "model.safetensors"), prefixed);
        foreach (var t in prefixed.Values) t.Dispose();

        Assert.Equal(0, Invoke("export-onnx", "--model", TinyM3.ModelDir, "--output", temp.Sub("plain-onnx")));
        Assert.Equal(0, Invoke("export-onnx", "--model", model, "--output", temp.Sub("mlm-onnx")));
        using var plain = OnnxM3Encoder.Open(temp.Sub("plain-onnx"), intraOpThreads: 1);
        using var mlm = OnnxM3Encoder.Open(temp.Sub("mlm-onnx"), intraOpThreads: 1);
        string[] texts = ["Lexical matching rewards the exact terms.", "Short."];
        var a = plain.Encode(texts);
        var b = mlm.Encode(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(a[i].Dense, b[i].Dense);
            Assert.Equal(a[i].LexicalWeights, b[i].LexicalWeights);
        }
    }

    [Fact]
    public void FolderWithoutHeadsIsRefused()
    {
        using var temp = TinyM3.Temp();
        string model = temp.Sub("no-heads");
        Directory.CreateDirectory(model);
        foreach (string file in Directory.GetFiles(TinyM3.ModelDir).Where(f => !Path.GetFileName(f).StartsWith("sparse_linear", StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        var e = Assert.Throws<M3TrainException>(() => Invoke("export-onnx", "--model", model, "--output", temp.Sub("onnx")));
        Assert.Contains("no sparse_linear.pt: exporting a folder without heads", e.Message);
        Assert.False(Directory.Exists(temp.Sub("onnx")));
    }

    [Fact]
    public void OldOpsetAndExistingOutputAreClearErrors()
    {
        using var temp = TinyM3.Temp();
        var e = Assert.Throws<M3OnnxException>(() => Invoke("export-onnx", "--model", TinyM3.ModelDir, "--output", temp.Sub("onnx"), "--opset", "13"));
        Assert.Contains("opset 13 is too old", e.Message);

        Directory.CreateDirectory(temp.Sub("onnx"));
        e = Assert.Throws<M3OnnxException>(() => Invoke("export-onnx", "--model", TinyM3.ModelDir, "--output", temp.Sub("onnx")));
        Assert.Contains("exists (use --force to overwrite)", e.Message);
        Assert.Equal(0, Invoke("export-onnx", "--model", TinyM3.ModelDir, "--output", temp.Sub("onnx"), "--force"));
        Assert.True(File.Exists(Path.Combine(temp.Sub("onnx"), "model.onnx")));
    }
}
