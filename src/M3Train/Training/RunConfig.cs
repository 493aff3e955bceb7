using M3Train.Config;
using M3Train.Data;
using M3Train.Training.Losses;

namespace M3Train.Training;

/// <summary>
/// A training run's whole configuration, as read by <c>m3train finetune</c> and <c>m3train pretrain</c>:
/// <c>model</c>, <c>data</c>, <c>loss</c>, <c>train</c> sections and the output folder. Every key has a
/// documented default; unknown keys are errors.
/// </summary>
public sealed record RunConfig
{
    /// <summary>Where the run writes checkpoints, metrics, logs and the final model. Default runs/m3train.</summary>
    public string OutputDir { get; init; } = "runs/m3train";

    public ModelSection Model { get; init; } = new();
    public DataConfig Data { get; init; } = new();
    public LossConfig Loss { get; init; } = new();
    public TrainConfig Train { get; init; } = new();
    public PretrainConfig Pretrain { get; init; } = new();

    /// <summary>Loads a run config file with <c>--set</c> overrides applied.</summary>
    public static RunConfig Load(string path, IEnumerable<string>? overrides = null) =>
        ConfigLoader.Load<RunConfig>(path, overrides);
}
