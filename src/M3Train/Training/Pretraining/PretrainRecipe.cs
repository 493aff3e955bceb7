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
    public static TrainerResult Run(RunConfig config, TrainerOptions? options = null) => config.Pretrain.Objective switch
    {
        PretrainObjective.Retromae => RetroMaeRecipe.Run(config, options),
        _ => ContrastivePretrainRecipe.Run(config, options),
    };

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
