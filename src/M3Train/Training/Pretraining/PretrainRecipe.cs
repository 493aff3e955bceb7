using M3Train.Config;
using M3Train.Training.Losses;
using Serilog;

namespace M3Train.Training.Pretraining;

/// <summary>
/// Stage 1 of M3, <c>m3train pretrain</c>: <see cref="RetroMaeRecipe"/> on texts or <see cref="ContrastivePretrainRecipe"/>
/// on pairs, as <c>pretrain.objective</c> says. Both run on the fine-tuning recipe's setup and loop (configs, precision,
/// activation checkpointing, checkpoints, <c>--resume</c>, metrics, fault handling) and train the encoder; the sparse
/// and multi-vector heads are kept as loaded (and saved), whatever <c>model.heads</c> says.
/// </summary>
public static class PretrainRecipe
{
    public static TrainerResult Run(RunConfig config, TrainerOptions? options = null)
    {
        if (config.Stages.Count > 0)
            throw new M3TrainException("stages: only m3train finetune runs in stages; pretrain each objective with its own config (RetroMAE, then contrastive).");
        return config.Pretrain.Objective switch
        {
            PretrainObjective.Retromae => RetroMaeRecipe.Run(config, options),
            _ => ContrastivePretrainRecipe.Run(config, options),
        };
    }

    /// <summary>
    /// Reads a pretraining config: <paramref name="path"/> with <paramref name="overrides"/>, and the objective's own
    /// defaults (<see cref="PretrainDefaults"/>) for the keys neither sets, said in the log.
    /// </summary>
    public static RunConfig LoadConfig(string path, IEnumerable<string>? overrides = null)
    {
        var sets = overrides?.ToList() ?? [];
        var objective = RunConfig.Load(path, sets).Pretrain.Objective;
        var config = ConfigLoader.Load<RunConfig>(path, sets, PretrainDefaults.For(objective), out var applied);
        if (applied.Count > 0)
            Log.Information("pretrain.objective {Objective}: {Defaults} are the objective's defaults, for the keys the config does not set (the fine-tuning defaults do not apply)",
                objective.ToString().ToLowerInvariant(), string.Join(", ", PretrainDefaults.For(objective).Where(d => applied.Contains(d[..d.IndexOf('=')]))));
        return config;
    }

    /// <summary>Checks the settings the configured objective needs and narrows <c>model.heads</c> to the dense one.</summary>
    public static RunConfig Prepare(RunConfig config) => config.Pretrain.Objective switch
    {
        PretrainObjective.Retromae => RetroMaeRecipe.Prepare(config),
        _ => ContrastivePretrainRecipe.Prepare(config),
    };

    /// <summary><paramref name="config"/> with <c>model.heads</c> [dense]: pretraining trains the encoder, not the sparse and multi-vector heads.</summary>
    internal static RunConfig EncoderOnly(RunConfig config)
    {
        if (!config.Model.Heads.SequenceEqual([M3Head.Dense]))
            Log.Information("Pretraining trains the encoder only: the sparse and multi-vector heads are kept as loaded (model.heads [dense])");
        return config with { Model = config.Model with { Heads = [M3Head.Dense] } };
    }
}
