using M3Train.Config;
using M3Train.Data;
using M3Train.Training.Losses;

namespace M3Train.Training;

/// <summary>
/// A training run's whole configuration, as read by <c>m3train finetune</c> and <c>m3train pretrain</c>:
/// <c>model</c>, <c>data</c>, <c>loss</c>, <c>train</c> sections and the output folder. Every key has a
/// documented default; unknown keys are errors.
/// </summary>
public sealed record RunConfig : IConfigValidatable
{
    /// <summary>Where the run writes checkpoints, metrics, logs and the final model. Default runs/m3train.</summary>
    public string OutputDir { get; init; } = "runs/m3train";

    public ModelSection Model { get; init; } = new();
    public DataConfig Data { get; init; } = new();
    public LossConfig Loss { get; init; } = new();
    public TrainConfig Train { get; init; } = new();
    public PretrainConfig Pretrain { get; init; } = new();

    /// <summary>
    /// Fine-tune in stages, one after another in this run's folder: each entry (name, and any of max_steps, epochs,
    /// heads, lr, warmup_ratio, use_self_distill, unified_finetuning) overrides the run's keys for its stage, which starts
    /// from the weights and data position the stage before ended with. Default: none (one stage, the config as it is).
    /// See configs/bge-m3-finetune.yaml for the paper's three.
    /// </summary>
    public List<StageConfig> Stages { get; init; } = [];

    public IEnumerable<(string Key, string Message)> Validate()
    {
        foreach (var name in Stages.GroupBy(s => s.Name).Where(g => g.Count() > 1).Select(g => g.Key))
            yield return ("stages", $"two stages are named '{name}': each names its own folder.");
        int bins = Data.BinEdges.Count + 1;
        if (Train.SubBatchSizes.Count > 0 && Train.SubBatchSizes.Count != bins)
            yield return ("train.sub_batch_sizes", $"has {Train.SubBatchSizes.Count} entries but data.bin_edges makes {bins} bins; give one per bin (0: the bin's batch in one pass).");
    }

    /// <summary>Loads a run config file with <c>--set</c> overrides applied.</summary>
    public static RunConfig Load(string path, IEnumerable<string>? overrides = null) =>
        ConfigLoader.Load<RunConfig>(path, overrides);
}
