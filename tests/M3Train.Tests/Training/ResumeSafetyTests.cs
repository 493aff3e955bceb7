using M3Train.Checkpoints;
using M3Train.Tests.Checkpoints;
using M3Train.Training;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

/// <summary>
/// Resuming never trains on something other than what was saved without saying so: damaged checkpoints are found
/// by their manifest, <c>--resume latest</c> falls back to the newest complete one, an explicit damaged checkpoint
/// is an error, settings that changed are listed, and <c>train.max_steps</c> is honoured or refused.
/// </summary>
[Collection(SerilogCaptureCollection.Name)]
public sealed class ResumeSafetyTests : IDisposable
{
    readonly string _run = Path.Combine(Path.GetTempPath(), $"m3-resume-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_run)) Directory.Delete(_run, recursive: true);
    }

    CheckpointManager ThreeCheckpoints()
    {
        var manager = new CheckpointManager(_run, keepLast: 5);
        foreach (int step in new[] { 10, 20, 30 })
            manager.Save(step, dir =>
            {
                File.WriteAllText(Path.Combine(dir, "trainer_state.json"), $"{{\"step\": {step}}}");
                File.WriteAllBytes(Path.Combine(dir, "optimizer.bin"), new byte[1000]);
            });
        return manager;
    }

    static string File30(CheckpointManager m, string name) => Path.Combine(m.List()[^1].Path, name);

    public static TheoryData<string> Damage => new() { "truncated", "empty", "missing", "flipped", "manifest" };

    [Theory]
    [MemberData(nameof(Damage))]
    public void ResumeLatestSkipsADamagedCheckpointAndSaysSo(string damage)
    {
        var manager = ThreeCheckpoints();
        string optimizer = File30(manager, "optimizer.bin");
        switch (damage)
        {
            case "truncated": File.WriteAllBytes(optimizer, new byte[999]); break;
            case "empty": File.WriteAllBytes(optimizer, []); break;
            case "missing": File.Delete(optimizer); break;
            case "flipped": File.WriteAllBytes(optimizer, [.. new byte[999], 1]); break;
            case "manifest": File.WriteAllText(File30(manager, CheckpointManager.ManifestFile), "{ broken"); break;
        }
        using var log = new LogCapture();
        string resumed = manager.ResolveResume("latest");
        Assert.EndsWith(CheckpointManager.NameOf(20), resumed);
        string warning = Assert.Single(log.Warnings);
        Assert.Contains(CheckpointManager.NameOf(30), warning);
        Assert.Contains("newest complete one", warning);

        var explicitly = Assert.Throws<M3TrainException>(() => manager.ResolveResume(manager.List()[^1].Path));
        Assert.Contains("the checkpoint is damaged", explicitly.Message);
        Assert.Contains("--resume latest", explicitly.Message);
    }

    [Fact]
    public void WhenEveryCheckpointIsDamagedResumeLatestSaysWhatIsWrongWithEach()
    {
        var manager = ThreeCheckpoints();
        foreach (var (_, path) in manager.List()) File.Delete(Path.Combine(path, "optimizer.bin"));
        var error = Assert.Throws<M3TrainException>(() => manager.ResolveResume("latest"));
        Assert.Contains("no complete checkpoint", error.Message);
        Assert.Equal(3, error.Message.Split("optimizer.bin is missing").Length - 1);
    }

    [Fact]
    public void AnIntactCheckpointVerifiesAndAnotherFileBesideItIsIgnored()
    {
        var manager = ThreeCheckpoints();
        File.WriteAllText(File30(manager, "notes.txt"), "added later");
        Assert.Null(CheckpointManager.Verify(manager.List()[^1].Path));
        Assert.Equal(manager.List()[^1].Path, manager.ResolveResume("latest"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("{ \"step\": ")]
    [InlineData("[1, 2]")]
    [InlineData("{ \"step\": 50, \"total_steps\": 10 }")]
    [InlineData("{ \"step\": -1 }")]
    [InlineData("{ \"step\": \"ten\" }")]
    public void ACorruptTrainerStateIsAnErrorThatSaysHowToGoOn(string json)
    {
        Directory.CreateDirectory(_run);
        File.WriteAllText(Path.Combine(_run, TrainerState.FileName), json);
        var error = Assert.Throws<M3TrainException>(() => TrainerState.Load(_run));
        Assert.Contains(Path.Combine(_run, TrainerState.FileName), error.Message);
        Assert.Contains("--resume latest", error.Message);
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("empty")]
    [InlineData("truncated")]
    public void AnUnreadableOptimizerStateIsAClearError(string damage)
    {
        Directory.CreateDirectory(_run);
        using var weight = nn.Parameter(ones(4, 4));
        using var optimizer = optim.AdamW([weight]);
        string path = Path.Combine(_run, "optimizer.bin");
        optimizer.save_state_dict(path);
        if (damage == "missing") File.Delete(path);
        if (damage == "empty") File.WriteAllBytes(path, []);
        if (damage == "truncated") File.WriteAllBytes(path, File.ReadAllBytes(path)[..^7]);
        var error = Assert.Throws<M3TrainException>(() => CheckpointManager.LoadOptimizer((OptimizerHelper)optimizer, _run));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void ConfigChangesListEveryKeyThatDiffers()
    {
        Directory.CreateDirectory(_run);
        File.WriteAllText(Path.Combine(_run, "config.yaml"), "output_dir: \"runs/a\"\ntrain:\n  lr: 1e-05\n  max_steps: 10\ndata:\n  files: [\"a.jsonl\"]\n");
        var changes = CheckpointManager.ConfigChanges(_run, "output_dir: \"runs/b\"\ntrain:\n  lr: 2e-05\n  max_steps: 10\ndata:\n  files: [\"a.jsonl\", \"b.jsonl\"]\n  seed: 3\n");
        Assert.Equal(["data.files: [a.jsonl] → [a.jsonl, b.jsonl]", "data.seed: (absent) → 3", "output_dir: runs/a → runs/b", "train.lr: 1e-05 → 2e-05"], changes);
    }
}
