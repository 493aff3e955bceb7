using M3Train.Data;
using M3Train.Training;
using M3Train.Training.Pretraining;

namespace M3Train.Tests.Training.Pretraining;

/// <summary>A short pretraining run of the shipped tiny model on the shipped pretraining data, in a temporary output folder.</summary>
public sealed class PretrainRun : IDisposable
{
    public string Output { get; } = Path.Combine(Path.GetTempPath(), "m3-pretrain-" + Guid.NewGuid().ToString("N"));

    public RunConfig Config(PretrainObjective objective, int maxSteps = 8, int saveEvery = 0) => new()
    {
        OutputDir = Output,
        Model = new ModelSection { Path = TinyRun.Repo("data", "models", "tiny-m3") },
        Data = new DataConfig
        {
            Files = [TinyRun.Repo("data", "pretrain", objective == PretrainObjective.Retromae ? "texts.jsonl" : "pairs.jsonl")],
            TrainGroupSize = 1,
            QueryMaxLen = 32,
            PassageMaxLen = 48,
            BinEdges = [],
            BatchSizes = [8],
            CacheTokenCounts = false,
        },
        Pretrain = new PretrainConfig { Objective = objective },
        Train = new TrainConfig
        {
            Lr = 2e-3,
            MaxSteps = maxSteps,
            WarmupRatio = 0.1,
            SubBatchSize = 4,
            Precision = Precision.Fp32,
            ActivationCheckpointing = false,
            LogEvery = 1,
            SaveEvery = saveEvery,
            KeepLast = 10,
            Tensorboard = false,
        },
    };

    public void Dispose()
    {
        try { Directory.Delete(Output, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
