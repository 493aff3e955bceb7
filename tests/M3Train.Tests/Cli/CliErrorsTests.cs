using System.Reflection;
using System.Text.Json;
using M3Train.Cli;
using M3Train.Config;
using M3Train.Onnx;
using Xunit;
using YamlDotNet.Core;

namespace M3Train.Tests.Cli;

/// <summary>The top-level handler: every expected failure is one <c>error:</c> line and exit 1 or 2; only a bug has a stack trace, and only with --verbose.</summary>
public sealed class CliErrorsTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("m3cli-errors-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public static TheoryData<Exception, int, string> Expected => new()
    {
        { new M3TrainException("data/x.jsonl:3: \"pos\" is empty"), CliErrors.BadInput, "error: data/x.jsonl:3: \"pos\" is empty" },
        { new ConfigException("my.yaml", 14, "train.lrr", "unknown key."), CliErrors.BadInput, "error: my.yaml:14: 'train.lrr': unknown key." },
        { new M3OnnxException("out: exists (use --force to overwrite)"), CliErrors.BadInput, "error: out: exists (use --force to overwrite)" },
        { new TargetInvocationException(new M3TrainException("wrapped")), CliErrors.BadInput, "error: wrapped" },
        { new AggregateException(new M3OnnxException("inside a task")), CliErrors.BadInput, "error: inside a task" },
        { new YamlException(new Mark(0, 3, 1), new Mark(0, 3, 2), "did not find expected node content"), CliErrors.BadInput, "error: line 3: invalid YAML: did not find expected node content (fix the file's syntax)" },
        { new JsonException("'}' is invalid", "$.a", 4, 7), CliErrors.BadInput, "error: line 5: invalid JSON: '}' is invalid (fix the file's syntax)" },
        { new FileNotFoundException("Could not find file '/data/in.jsonl'."), CliErrors.BadInput, "error: /data/in.jsonl: not found, or a part of the path is a file (check the path)" },
        { new UnauthorizedAccessException("Access to the path '/ro/out.jsonl' is denied."), CliErrors.RuntimeFailure, "error: /ro/out.jsonl: permission denied (use a location you can write to, or change its permissions)" },
        { new IOException("No space left on device : '/full/out.npy'", 28), CliErrors.RuntimeFailure, "error: /full/out.npy: no space left on the device (free space there, or write to another disk)" },
        { new IOException("Disk full", unchecked((int)0x80070070)), CliErrors.RuntimeFailure, "error: no space left on the device (free space there, or write to another disk)" },
        { new IOException("Read-only file system : '/mnt/ro/x'", 30), CliErrors.RuntimeFailure, "error: /mnt/ro/x: read-only file system (write to another location)" },
        { new IOException("Input/output error : '/disk/x'", 5), CliErrors.RuntimeFailure, "error: /disk/x: Input/output error (check the path, the disk and its permissions)" },
        { new OutOfMemoryException(), CliErrors.RuntimeFailure, "error: out of memory (lower --batch-size or the lengths, or use a machine with more memory)" },
        { new System.Runtime.InteropServices.ExternalException("CUDA out of memory. Tried to allocate 2 GiB\nException raised from ..."), CliErrors.RuntimeFailure, "error: libtorch: CUDA out of memory. Tried to allocate 2 GiB (for an out-of-memory error, lower the batch size or the lengths)" },
    };

    [Theory]
    [MemberData(nameof(Expected))]
    public void ExpectedFailuresAreOneLineWithTheirExitCode(Exception exception, int code, string line)
    {
        foreach (bool verbose in new[] { false, true })
        {
            var error = new StringWriter();
            Assert.Equal(code, CliErrors.Report(exception, verbose, error));
            Assert.Equal(line, error.ToString().TrimEnd('\n'));
        }
    }

    [Fact]
    public void ABugSaysSoAndShowsItsStackTraceOnlyWhenVerbose()
    {
        Exception bug;
        try
        {
            throw new InvalidOperationException("Sequence contains no elements");
        }
        catch (InvalidOperationException e)
        {
            bug = e;
        }
        var quiet = new StringWriter();
        Assert.Equal(CliErrors.InternalError, CliErrors.Report(bug, verbose: false, quiet));
        Assert.StartsWith("error: internal error: InvalidOperationException: Sequence contains no elements\n", quiet.ToString());
        Assert.Contains("--verbose", quiet.ToString());
        Assert.DoesNotContain(" at ", quiet.ToString());

        var verbose = new StringWriter();
        Assert.Equal(CliErrors.InternalError, CliErrors.Report(bug, verbose: true, verbose));
        Assert.Contains($" at {nameof(CliErrorsTests)}", verbose.ToString().Replace("M3Train.Tests.Cli.", ""));
    }

    [Fact]
    public void UsageErrorsExitTwoAndPointAtHelp()
    {
        var (code, error) = CliRun.Run("encode", "--input", Path.Combine(_root, "missing.txt"));
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains("error: Option '--model' is required.", error);
        Assert.Contains("no such file", error);
        Assert.Contains("m3train encode --help", error);
    }

    [Fact]
    public void VerboseIsAcceptedByEveryVerb()
    {
        var (code, error) = CliRun.Run("config", "--verbose", "--reference");
        Assert.Equal(0, code);
        Assert.Equal("", error);
    }

    [Fact]
    public void AYamlSyntaxErrorThroughTheProcessIsOneLine()
    {
        string config = Path.Combine(_root, "broken.yaml");
        File.WriteAllText(config, "model:\n  heads: [dense, sparse\ntrain:\n  lr: 1e-5\n");
        var (code, stdout, stderr) = M3TrainProcess.Run("config", "--show", config);
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Equal("", stdout);
        Assert.StartsWith($"error: {config}:", stderr);
        Assert.Contains("invalid YAML", stderr);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void AFullDiskThroughTheProcessIsARuntimeFailureWithoutAStackTrace()
    {
        Assert.SkipUnless(File.Exists("/dev/full"), "/dev/full (a device that reports a full disk on every write) exists on Linux only");
        string pairs = Path.Combine(_root, "pairs.jsonl");
        File.WriteAllText(pairs, "{\"query\": \"what is dense retrieval\", \"passage\": \"Dense retrieval maps texts into one vector space.\"}\n");
        var (code, _, stderr) = M3TrainProcess.Run("score", "--model", GoldenFolder.ReferenceCheckpoint, "--pairs", pairs, "--output", "/dev/full");
        Assert.Equal(CliErrors.RuntimeFailure, code);
        Assert.Contains("error: /dev/full: no space left on the device (free space there, or write to another disk)", stderr);
        Assert.DoesNotContain(" at ", stderr);
    }
}
