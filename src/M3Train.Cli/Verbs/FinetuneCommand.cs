using System.CommandLine;
using M3Train.Training;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train finetune</c>: unified fine-tuning with self-knowledge distillation.</summary>
public static class FinetuneCommand
{
    public static Command Create() => TrainingOptions.CreateCommand("finetune",
        "Unified fine-tuning (dense + sparse + multi-vector heads, self-knowledge distillation) from a config file.",
        UnifiedFinetuneRecipe.Run);
}
