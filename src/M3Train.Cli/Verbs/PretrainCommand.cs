using System.CommandLine;
using M3Train.Training.Pretraining;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train pretrain</c>: RetroMAE or contrastive pretraining (<c>pretrain.objective</c>) on the shared trainer, with the
/// objective's defaults (<see cref="PretrainDefaults"/>) where the config sets nothing.
/// </summary>
public static class PretrainCommand
{
    public static Command Create() => TrainingOptions.CreateCommand("pretrain",
        "Stage-1 pretraining from a config file: RetroMAE on {\"text\"} rows or contrastive (dense InfoNCE) on {\"query\",\"pos\"} pairs.",
        PretrainRecipe.Run, PretrainRecipe.LoadConfig);
}
