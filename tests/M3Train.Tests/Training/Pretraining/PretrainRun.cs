using M3Train.Training;
using M3Train.Training.Pretraining;

namespace M3Train.Tests.Training.Pretraining;

/// <summary>A short pretraining run of the shipped tiny model on the shipped pretraining data, in a temporary output folder.</summary>
public sealed class PretrainRun : IDisposable
{
    readonly TinyRun _run = new();

    public string Output => _run.Output;

    /// <summary>The tiny fine-tuning run's settings with the pretraining data, G = 1, sub-batches of 4 and a higher lr.</summary>
    public RunConfig Config(PretrainObjective objective, int maxSteps = 8, int saveEvery = 0)
    {
        var c = _run.Config(maxSteps, saveEvery);
        return c with
        {
            Data = c.Data with
            {
                Files = [TinyRun.Repo("data", "pretrain", objective == PretrainObjective.Retromae ? "texts.jsonl" : "pairs.jsonl")],
                TrainGroupSize = 1,
                QueryMaxLen = 32,
                PassageMaxLen = 48,
                BatchSizes = [8],
            },
            Pretrain = new PretrainConfig { Objective = objective },
            Train = c.Train with { Lr = 2e-3, WarmupRatio = 0.1, SubBatchSize = 4 },
        };
    }

    public void Dispose() => _run.Dispose();
}
