using M3Train.Checkpoints;
using M3Train.Model;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Training;

/// <summary>What would crash a run hours in is refused at start-up, naming the setting to change.</summary>
public sealed class TrainingPreflightTests
{
    [Theory]
    [InlineData("data.passage_max_len")]
    [InlineData("data.query_max_len")]
    public void AMaximumLengthPastThePositionTableIsRefusedBeforeTraining(string key)
    {
        using var run = new TinyRun();
        var config = run.Config();
        config = config with { Data = key == "data.query_max_len" ? config.Data with { QueryMaxLen = 200 } : config.Data with { PassageMaxLen = 8192 } };
        var error = Assert.Throws<M3TrainException>(() => UnifiedFinetuneRecipe.Run(config));
        Assert.Contains(key, error.Message);
        Assert.Contains("at most 128 tokens", error.Message);
        Assert.Contains("extend-positions", error.Message);
        Assert.False(Directory.Exists(Path.Combine(run.Output, "checkpoints")));
    }

    [Fact]
    public void ATokenizerWithMoreIdsThanTheModelHasRowsIsRefused()
    {
        using var run = new TinyRun();
        string model = Path.Combine(run.Output + "-model");
        try
        {
            using (var small = new M3Model(XlmRobertaConfig.Tiny() with { VocabSize = 1000 }))
                M3CheckpointWriter.Save(small, model, tokenizerDirectory: TinyRun.Repo("data", "models", "tiny-m3"));
            var config = run.Config() with { Model = new ModelSection { Path = model } };
            var error = Assert.Throws<M3TrainException>(() => UnifiedFinetuneRecipe.Run(config));
            Assert.Contains("the tokenizer has 1502 ids but the model's vocab_size is 1000", error.Message);
        }
        finally { Directory.Delete(model, recursive: true); }
    }

    [Theory]
    [InlineData("file")]
    [InlineData("under-file")]
    [InlineData("read-only")]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void AnOutputFolderThatCannotBeWrittenIsAClearError(string kind)
    {
        if (kind == "read-only" && Environment.UserName == "root")
        {
            // Root writes into folders whose mode forbids it, but not into sysfs, which refuses new entries to everyone.
            Assert.SkipUnless(Directory.Exists("/sys/kernel"), "running as root without sysfs: no folder here refuses root's writes");
            string refused = "/sys/m3train-output-test/run";
            var sysError = Assert.Throws<M3TrainException>(() => TrainingPreflight.CreateOutputDirectory(refused));
            Assert.StartsWith($"output_dir {refused}:", sysError.Message);
            return;
        }
        string root = Directory.CreateTempSubdirectory("m3-output-").FullName;
        try
        {
            string output = kind switch
            {
                "file" => Path.Combine(root, "taken"),
                "under-file" => Path.Combine(root, "taken", "run"),
                _ => Path.Combine(root, "locked", "run"),
            };
            if (kind != "read-only") File.WriteAllText(Path.Combine(root, "taken"), "a file");
            else
            {
                Directory.CreateDirectory(Path.Combine(root, "locked"));
                File.SetUnixFileMode(Path.Combine(root, "locked"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
            }
            var error = Assert.Throws<M3TrainException>(() => TrainingPreflight.CreateOutputDirectory(output));
            Assert.StartsWith($"output_dir {output}:", error.Message);
            Assert.Contains(kind switch { "file" => "is a file", "under-file" => "is under", _ => "cannot" }, error.Message);
        }
        finally
        {
            if (Directory.Exists(Path.Combine(root, "locked")))
                File.SetUnixFileMode(Path.Combine(root, "locked"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(root, recursive: true);
        }
    }
}
