using M3Train.Data;
using M3Train.Tests.Data;
using M3Train.Training;

namespace M3Train.Tests.Training;

/// <summary>A short fine-tuning run of the shipped tiny model on the shipped sample data, in a temporary output folder.</summary>
public sealed class TinyRun : IDisposable
{
    public string Output { get; } = Path.Combine(Path.GetTempPath(), "m3-run-" + Guid.NewGuid().ToString("N"));

    public static string Repo(params string[] parts) => Path.Combine([DataTestFolder.RepoRoot, .. parts]);

    public RunConfig Config(int maxSteps = 8, int saveEvery = 0) => new()
    {
        OutputDir = Output,
        Model = new ModelSection { Path = Repo("data", "models", "tiny-m3") },
        Data = new DataConfig
        {
            Files = [Repo("data", "train", "nq.jsonl"), Repo("data", "train", "toy_train_data1.jsonl")],
            TrainGroupSize = 4,
            QueryMaxLen = 32,
            PassageMaxLen = 64,
            BinEdges = [],
            BatchSizes = [4],
            CacheTokenCounts = false,
        },
        Train = new TrainConfig
        {
            Lr = 1e-3,
            MaxSteps = maxSteps,
            WarmupRatio = 0.25,
            Precision = Precision.Fp32,
            ActivationCheckpointing = false,
            LogEvery = 1,
            SaveEvery = saveEvery,
            KeepLast = 10,
            Tensorboard = false,
        },
    };

    /// <summary>The fine-tuning recipe with its objective wrapped by <paramref name="wrap"/> (fault injection).</summary>
    public static TrainerResult Finetune(RunConfig config, Func<TrainingSetup, ITrainingObjective, ITrainingObjective> wrap, TrainerOptions? options = null)
    {
        using var setup = new TrainingSetup(config, options ?? new TrainerOptions());
        using var trainer = new Trainer(setup, wrap(setup, UnifiedFinetuneRecipe.Objective(setup)));
        return trainer.Run();
    }

    public void Dispose()
    {
        try { Directory.Delete(Output, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
