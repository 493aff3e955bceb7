using M3Train.Config;
using Serilog;

namespace M3Train.Training;

/// <summary>
/// A fine-tuning run in stages (<c>stages:</c>), in one output folder: stage N trains in <c>output_dir/stages/N-name</c>
/// (its checkpoints, metrics and log, as a run of its own) and the last stage's model becomes <c>output_dir/final</c>.
/// <code>
/// for each stage: its config (the run's, with the stage's keys) → start from the stage before's final model, on the
///   data where that stage stopped (its loader position and micro-step) → TrainingSetup + Trainer, as a run of one stage
/// resume: stages whose last checkpoint reached their total are done; the first one that is not resumes from its
///   checkpoint (or starts, if it has none); the trainer state of each checkpoint records its stage
/// </code>
/// <c>train.stop_after</c> counts the steps an invocation trains across stages (so a run can stop in the middle of stage 2), and a resume gives
/// the weights of an uninterrupted run because each stage's resume does, and the next stage starts from the same state.
/// </summary>
public sealed class StagePlan
{
    public const string StagesFolder = "stages";

    readonly RunConfig _config;

    public StagePlan(RunConfig config)
    {
        if (config.Stages.Count == 0) throw new ArgumentException("a run without stages has no stage plan", nameof(config));
        _config = config;
        Output = Path.GetFullPath(config.OutputDir);
        Stages = config.Stages.Select((s, i) => new Stage(i, $"{i + 1}/{config.Stages.Count} {s.Name}",
            Path.Combine(Output, StagesFolder, $"{i + 1}-{s.Name}"), s)).ToList();
    }

    /// <summary>The stage folders (<c>stages/N-name</c>) that exist in the run folder <paramref name="output"/>, in stage order.</summary>
    public static IReadOnlyList<string> ExistingStageFolders(string output)
    {
        string stages = Path.Combine(output, StagesFolder);
        if (!Directory.Exists(stages)) return [];
        return [.. Directory.GetDirectories(stages)
            .Select(d => (Folder: d, Number: int.TryParse(Path.GetFileName(d).Split('-')[0], out int n) ? n : int.MaxValue))
            .OrderBy(s => s.Number).Select(s => s.Folder)];
    }

    /// <summary>The run folder: the stages' folders under <c>stages/</c>, and <c>final</c>.</summary>
    public string Output { get; }

    public IReadOnlyList<Stage> Stages { get; }

    /// <summary>One stage: its index, its label ("2/3 heads-warmup", recorded in its trainer states), its folder and its keys.</summary>
    public sealed record Stage(int Index, string Label, string Output, StageConfig Settings);

    /// <summary>
    /// The run config of <paramref name="stage"/>: the run's, with the stage's keys, its folder as output, the model to
    /// start from, and what is left of the invocation's <c>train.stop_after</c> after the <paramref name="stepsBefore"/>
    /// steps it trained in earlier stages.
    /// </summary>
    public RunConfig ConfigOf(Stage stage, string modelPath, int stepsBefore)
    {
        var s = stage.Settings;
        var train = _config.Train with
        {
            Lr = s.Lr ?? _config.Train.Lr,
            WarmupRatio = s.WarmupRatio ?? _config.Train.WarmupRatio,
            MaxSteps = s.MaxSteps ?? (s.Epochs is null ? _config.Train.MaxSteps : null),
            Epochs = s.Epochs ?? _config.Train.Epochs,
            StopAfter = _config.Train.StopAfter - stepsBefore,
        };
        return _config with
        {
            OutputDir = stage.Output,
            Stages = [],
            Model = _config.Model with { Path = modelPath, Heads = s.Heads ?? _config.Model.Heads },
            Loss = _config.Loss with
            {
                UseSelfDistill = s.UseSelfDistill ?? _config.Loss.UseSelfDistill,
                UnifiedFinetuning = s.UnifiedFinetuning ?? _config.Loss.UnifiedFinetuning,
            },
            Train = train,
        };
    }

    /// <summary>The state of the newest checkpoint of <paramref name="stage"/>, with its folder; null when it has none.</summary>
    public (TrainerState State, string Checkpoint)? Latest(Stage stage)
    {
        if (new CheckpointManager(stage.Output, _config.Train.KeepLast).Latest() is not { } latest) return null;
        var state = TrainerState.Load(latest);
        if (state.Stage != stage.Label)
            throw new M3TrainException($"{latest}: a checkpoint of stage '{state.Stage ?? "(none)"}' in the folder of stage '{stage.Label}': " +
                                       "the config's stages differ from the run's; resume with the config the run was started with.");
        return (state, latest);
    }

    /// <summary>Whether <paramref name="stage"/> has run to its end (its last checkpoint is at its last step).</summary>
    public bool Done(Stage stage) => Latest(stage) is var (state, _) && state.TotalSteps > 0 && state.Step >= state.TotalSteps;

    /// <summary>The stage a resume continues in: the one holding the checkpoint <paramref name="resume"/> names, or for "latest" the first that is not done.</summary>
    public int ResumeStage(string resume)
    {
        int index;
        if (resume == "latest")
        {
            index = Stages.FirstOrDefault(s => !Done(s))?.Index ?? Stages.Count;
            if (index == 0 && Latest(Stages[0]) is null)
                throw new M3TrainException($"--resume latest: {Output} holds no checkpoint of this run's first stage ({Stages[0].Output}).");
        }
        else
        {
            string dir = Path.GetFullPath(resume);
            index = Stages.FirstOrDefault(s => dir.StartsWith(s.Output + Path.DirectorySeparatorChar, StringComparison.Ordinal))?.Index
                ?? throw new M3TrainException($"--resume {resume}: not a checkpoint of one of this run's stages (under {Path.Combine(Output, StagesFolder)}).");
        }
        if (Stages.Skip(index + 1).FirstOrDefault(s => Latest(s) is not null) is { } later)
            throw new M3TrainException($"--resume {resume}: the later stage {later.Label} has checkpoints already, but {Stages[index].Label} is to continue; " +
                                       $"remove {later.Output} and the folders of the stages after it to train them again.");
        return index;
    }

    /// <summary>Fails when a fresh run would mix with an earlier one's stages.</summary>
    public void CheckFresh()
    {
        if (Stages.FirstOrDefault(s => Latest(s) is not null) is { } started)
            throw new M3TrainException($"{started.Output} already holds checkpoints of a run: pass --resume latest to continue it, or choose another output_dir.");
    }

    /// <summary>Moves the last stage's model to <c>output_dir/final</c> (once), and returns that folder.</summary>
    public string PublishFinal()
    {
        string final = Path.Combine(Output, "final");
        string last = Path.Combine(Stages[^1].Output, "final");
        if (Directory.Exists(last))
        {
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(last, final);
            Log.Information("Model of the last stage: {Final}", final);
        }
        return final;
    }

    /// <summary>Writes the whole staged config into the run folder, beside the stages' own.</summary>
    public void WriteConfig()
    {
        Directory.CreateDirectory(Output);
        File.WriteAllText(Path.Combine(Output, "config.yaml"), ConfigWriter.ToYaml(_config));
    }
}
