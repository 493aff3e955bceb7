using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using M3Train.Checkpoints;
using M3Train.Cli;
using M3Train.Text;
using M3Train.Tests.Data;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary><c>m3train encode</c>'s output forms: .npy for numpy, FlagEmbedding's key names, standard output, and the default length.</summary>
public sealed class EncodeFormatTests : IDisposable
{
    static readonly string[] Sentences =
    [
        "Dense retrieval maps queries and passages into one vector space.",
        "BM25 weighs terms by frequency.",
        "M3 has three heads.",
    ];

    readonly string _root = Directory.CreateTempSubdirectory("m3cli-encode-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    string Input()
    {
        string path = Path.Combine(_root, "texts.txt");
        File.WriteAllLines(path, Sentences);
        return path;
    }

    static float[][] DenseRows(string jsonl, string key = "dense") =>
        File.ReadAllLines(jsonl).Select(l => JsonDocument.Parse(l).RootElement.GetProperty(key).EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();

    [Fact]
    public void Fp16EncodingGivesTheFp32VectorsToWithinAThousandth()
    {
        string input = Input(), fp32 = Path.Combine(_root, "fp32.jsonl"), fp16 = Path.Combine(_root, "fp16.jsonl");
        Assert.Equal(0, CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", fp32).ExitCode);
        var (code, error) = CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", fp16, "--precision", "fp16");
        Assert.True(code == 0, error);
        var (a, b) = (DenseRows(fp32), DenseRows(fp16));
        for (int i = 0; i < a.Length; i++)
            Assert.All(a[i].Zip(b[i]), p => Assert.Equal(p.First, p.Second, 1e-3f));
    }

    [Fact]
    public void NpyHoldsTheDenseVectorsAsOneFloat32MatrixWithAValidHeader()
    {
        string input = Input();
        string npy = Path.Combine(_root, "dense.npy"), jsonl = Path.Combine(_root, "dense.jsonl");
        Assert.Equal(0, CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", npy, "--format", "npy").ExitCode);
        Assert.Equal(0, CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", jsonl).ExitCode);
        var expected = DenseRows(jsonl);
        int d = expected[0].Length;

        byte[] bytes = File.ReadAllBytes(npy);
        Assert.Equal([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0], bytes[..8]);
        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        Assert.Equal(0, (10 + headerLength) % 64);
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.EndsWith("\n", header);
        Assert.Equal($"{{'descr': '<f4', 'fortran_order': False, 'shape': ({Sentences.Length}, {d}), }}", header.TrimEnd(' ', '\n'));
        Assert.Equal(10 + headerLength + Sentences.Length * d * 4, bytes.Length);
        for (int i = 0; i < Sentences.Length; i++)
            for (int j = 0; j < d; j++)
                Assert.Equal(expected[i][j], BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(10 + headerLength + (i * d + j) * 4)));
    }

    [Fact]
    public void NumpyLoadsTheNpyFile()
    {
        Assert.SkipUnless(PythonHasNumpy(), "/usr/bin/python3 with numpy is not installed (apt-get install python3-numpy); the header is still checked byte by byte in the test above");
        string npy = Path.Combine(_root, "dense.npy");
        Assert.Equal(0, CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", Input(), "--output", npy, "--format", "npy").ExitCode);
        var lines = Python($"import numpy; a = numpy.load('{npy}'); print(a.dtype); print(a.shape[0]); print(a.shape[1]); print(repr(float(a[1, 0]))); print(float(numpy.linalg.norm(a[2])))")
            .Trim().Split('\n');
        byte[] bytes = File.ReadAllBytes(npy);
        int d = (bytes.Length - NpyMatrixWriter.HeaderBytes) / 4 / Sentences.Length;
        Assert.Equal(["float32", Sentences.Length.ToString(CultureInfo.InvariantCulture), d.ToString(CultureInfo.InvariantCulture)], lines[..3]);
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(NpyMatrixWriter.HeaderBytes + d * 4)), float.Parse(lines[3], CultureInfo.InvariantCulture));
        Assert.Equal(1.0, double.Parse(lines[4], CultureInfo.InvariantCulture), 1e-5);
    }

    [Fact]
    public void NpyTakesTheDenseVectorsOnly()
    {
        var (code, error) = CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", Input(), "--output", Path.Combine(_root, "x.npy"), "--format", "npy", "--sparse");
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains("--format npy: writes the dense vectors only", error);
    }

    [Fact]
    public void FlagEmbeddingKeyNamesAreAnOption()
    {
        string input = Input();
        string ours = Path.Combine(_root, "ours.jsonl"), theirs = Path.Combine(_root, "theirs.jsonl");
        Assert.Equal(0, CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", ours, "--dense", "--sparse", "--colbert").ExitCode);
        Assert.Equal(0, CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", theirs, "--dense", "--sparse", "--colbert", "--keys", "flagembedding").ExitCode);
        var row = JsonDocument.Parse(File.ReadLines(theirs).First()).RootElement;
        Assert.Equal(["dense_vecs", "lexical_weights", "colbert_vecs"], row.EnumerateObject().Select(p => p.Name));
        Assert.Equal(DenseRows(ours), DenseRows(theirs, "dense_vecs"));
    }

    [Fact]
    public void DashWritesToStandardOutputAndTheLogToStandardError()
    {
        var (code, stdout, stderr) = M3TrainProcess.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", Input(), "--output", "-");
        Assert.Equal(0, code);
        var lines = stdout.TrimEnd('\n').Split('\n');
        Assert.Equal(Sentences.Length, lines.Length);
        Assert.All(lines, l => Assert.True(JsonDocument.Parse(l).RootElement.TryGetProperty("dense", out _)));
        Assert.Contains("Texts are truncated to", stderr);
    }

    [Fact]
    public void MaxLengthDefaultsToAllTheModelsPositions()
    {
        // The tiny model's 130 positions, extended past FlagEmbedding's old 512 default, so the default shows.
        string model = Path.Combine(_root, "long-model");
        PositionExtension.Extend(GoldenFolder.ReferenceCheckpoint, model, 1026, PositionExtensionMethod.Copy);
        var tokenizer = XlmrTokenizer.FromFolder(model);
        string text = string.Join(' ', Enumerable.Repeat("retrieval", 2000));
        int tokens = tokenizer.EncodeBatch([text], int.MaxValue)[0].Length;
        Assert.True(tokens > 1024);
        string input = Path.Combine(_root, "long.txt"), output = Path.Combine(_root, "long.jsonl");
        File.WriteAllText(input, text + "\n");

        Assert.Equal(0, CliRun.Run("encode", "--model", model, "--input", input, "--output", output, "--colbert").ExitCode);

        var colbert = JsonDocument.Parse(File.ReadAllText(output)).RootElement.GetProperty("colbert");
        Assert.Equal(1024 - 1, colbert.GetArrayLength());
    }

    static bool PythonHasNumpy() => File.Exists("/usr/bin/python3") && Python("import numpy; print('ok')").Trim() == "ok";

    static string Python(string code)
    {
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(code);
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? output : "";
    }
}
