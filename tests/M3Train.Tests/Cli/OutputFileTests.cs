using M3Train.Checkpoints;
using M3Train.Cli;
using M3Train.Runtime;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Cli;

/// <summary>
/// Output files: never the input, never a folder, written whole or not at all (a failed run leaves an existing
/// file as it was), and no NaN or infinity written from a damaged model.
/// </summary>
public sealed class OutputFileTests : IDisposable
{
    const string Existing = "{\"dense\": \"an earlier run's output\"}\n";

    readonly string _root = Directory.CreateTempSubdirectory("m3cli-output-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    string Texts(string name, params string[] lines)
    {
        string path = Path.Combine(_root, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void EncodeRefusesToWriteItsOwnInputAndLeavesItIntact()
    {
        string input = Texts("x.jsonl", "{\"text\": \"first\"}", "{\"text\": \"second\"}");
        byte[] before = File.ReadAllBytes(input);

        var (code, error) = CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", input);

        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains($"--output {input}: is the file --input reads", error);
        Assert.Equal(before, File.ReadAllBytes(input));
        Assert.Single(Directory.GetFiles(_root));
    }

    [Fact]
    public void AnOutputThatIsASymbolicLinkToTheInputIsTheSameFile()
    {
        string input = Texts("texts.txt", "one text");
        string link = Path.Combine(_root, "link.txt");
        File.CreateSymbolicLink(link, input);
        string viaFolderLink = Path.Combine(_root, "folder-link");
        Directory.CreateSymbolicLink(viaFolderLink, _root);

        Assert.True(VerbOutput.SameFile(input, link));
        Assert.True(VerbOutput.SameFile(input, Path.Combine(viaFolderLink, "texts.txt")));
        Assert.True(VerbOutput.SameFile(input, Path.Combine(_root, ".", "texts.txt")));
        Assert.False(VerbOutput.SameFile(input, Path.Combine(_root, "other.txt")));
        var (code, _) = CliRun.Run("score", "--model", GoldenFolder.ReferenceCheckpoint, "--pairs", input, "--output", link);
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Equal("one text\n", File.ReadAllText(input));
    }

    [Fact]
    public void FoldersGivenAsFilesAreUsageErrors()
    {
        string input = Texts("texts.txt", "one text");
        var asInput = CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", _root, "--output", Path.Combine(_root, "o.jsonl"));
        Assert.Equal(CliErrors.BadInput, asInput.ExitCode);
        Assert.Contains($"--input {_root}: is a folder; give a file.", asInput.Error);

        var asOutput = CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", _root);
        Assert.Equal(CliErrors.BadInput, asOutput.ExitCode);
        Assert.Contains($"--output {_root}: is a folder; give a file path to write to.", asOutput.Error);

        var modelIsFile = CliRun.Run("encode", "--model", input, "--input", input, "--output", Path.Combine(_root, "o.jsonl"));
        Assert.Contains($"--model {input}: is a file", modelIsFile.Error);
    }

    [Fact]
    public void AFailedEncodeLeavesTheExistingOutputAsItWas()
    {
        string input = Texts("texts.jsonl", "{\"text\": \"first\"}", "{\"text\": \"second\"}", "{\"txt\": \"a typo in the key\"}");
        string output = Path.Combine(_root, "out.jsonl");
        File.WriteAllText(output, Existing);

        var (code, error) = CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", output);

        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains($"{input}:3: expected a string field \"text\"", error);
        Assert.Equal(Existing, File.ReadAllText(output));
        Assert.Equal(["out.jsonl", "texts.jsonl"], Directory.GetFiles(_root).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void ASuccessfulEncodeReplacesTheExistingOutput()
    {
        string input = Texts("texts.txt", "first", "second");
        string output = Path.Combine(_root, "out.jsonl");
        File.WriteAllText(output, Existing);
        Assert.Equal(0, CliRun.Run("encode", "--model", GoldenFolder.ReferenceCheckpoint, "--input", input, "--output", output).ExitCode);
        Assert.Equal(2, File.ReadAllLines(output).Length);
        Assert.DoesNotContain(Directory.GetFiles(_root), f => Path.GetFileName(f).StartsWith('.'));
    }

    [Fact]
    public void AtomicFileReplacesTheTargetOnlyOnCommit()
    {
        string target = Path.Combine(_root, "sub", "file.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.WriteAllText(target, "old");
        using (var file = AtomicFile.Create(target))
        {
            file.Stream.Write("new"u8);
            file.Stream.Flush();
            Assert.Equal("old", File.ReadAllText(target));
        }
        Assert.Equal("old", File.ReadAllText(target));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(target)!));

        AtomicFile.WriteAllText(target, "new");
        Assert.Equal("new", File.ReadAllText(target));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(target)!));
    }

    [Fact]
    public void ANonFiniteModelOutputNamesTheInputLineInsteadOfCrashingTheWriter()
    {
        string damaged = DamagedModel();
        string input = Texts("texts.txt", "a text", "another text");
        string output = Path.Combine(_root, "out.jsonl");
        File.WriteAllText(output, Existing);

        var (code, error) = CliRun.Run("encode", "--model", damaged, "--input", input, "--output", output);

        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains($"error: {input}:1: the model's dense vector for this input is NaN or infinite", error);
        Assert.Equal(Existing, File.ReadAllText(output));
    }

    [Fact]
    public void EvalAndMineOnANonFiniteModelNameTheTextAndWriteNoReport()
    {
        string damaged = DamagedModel();
        string corpus = Texts("corpus.jsonl", "{\"_id\": \"d1\", \"text\": \"a document\"}", "{\"_id\": \"d2\", \"text\": \"another\"}");
        string queries = Texts("queries.jsonl", "{\"_id\": \"q1\", \"text\": \"a query\"}");
        string qrels = Texts("qrels.tsv", "query-id\tcorpus-id\tscore", "q1\td1\t1");
        string report = Path.Combine(_root, "report.json");

        var (evalCode, evalError) = CliRun.Run("eval", "--model", damaged, "--corpus", corpus, "--queries", queries, "--qrels", qrels, "--output", report);

        Assert.Equal(CliErrors.BadInput, evalCode);
        Assert.Contains($"error: {corpus}: document 'd1': the model's dense embedding is NaN or infinite", evalError);
        Assert.False(File.Exists(report));

        string rows = Texts("rows.jsonl", "{\"query\": \"a query\", \"pos\": [\"a document\"], \"neg\": [\"another\", \"a third\"]}");
        string mined = Path.Combine(_root, "mined.jsonl");
        var (mineCode, mineError) = CliRun.Run("mine", "--model", damaged, "--input", rows, "--output", mined);

        Assert.Equal(CliErrors.BadInput, mineCode);
        Assert.Contains("error: the passage \"a document\": the model's dense embedding is NaN or infinite", mineError);
        Assert.False(File.Exists(mined));
    }

    /// <summary>The reference checkpoint with one LayerNorm's weights set to NaN: every output of the model is NaN.</summary>
    string DamagedModel()
    {
        string damaged = Path.Combine(_root, "damaged");
        using var checkpoint = M3Checkpoint.Load(GoldenFolder.ReferenceCheckpoint);
        using (no_grad())
        {
            var (_, norm) = checkpoint.Model.named_parameters().First(p => p.name.EndsWith("LayerNorm.weight", StringComparison.Ordinal));
            norm.fill_(double.NaN);
        }
        checkpoint.Save(damaged);
        return damaged;
    }
}
