using System.ComponentModel.DataAnnotations;
using M3Train.Config;
using M3Train.Training.Losses;

namespace M3Train.Training;

/// <summary>
/// One entry of <c>stages:</c>, a stage of a fine-tuning run that trains in several stages (the paper's recipe: a
/// dense-only warm-up, then the sparse and multi-vector heads, then unified training with self-distillation). Each key
/// left out keeps the run's value; every stage gets its own optimizer and warmup/decay schedule and starts from the
/// weights the stage before it ended with, on the data where that one stopped.
/// </summary>
public sealed record StageConfig : IConfigValidatable
{
    /// <summary>The stage's name: its folder is <c>output_dir/stages/N-name</c>. Letters, digits, '-' and '_'. Required.</summary>
    public string Name { get; init; } = "";

    /// <summary>Optimizer steps of the stage. Null: <see cref="Epochs"/>, else the run's <c>train.max_steps</c> or <c>train.epochs</c>.</summary>
    [Range(1, int.MaxValue)] public int? MaxSteps { get; init; }

    /// <summary>Passes over the data in the stage (when <see cref="MaxSteps"/> is not set). Null: the run's.</summary>
    [Range(1, 100000)] public int? Epochs { get; init; }

    /// <summary>Heads the stage trains (any of dense, sparse, colbert); the others keep their weights. Null: <c>model.heads</c>.</summary>
    public List<M3Head>? Heads { get; init; }

    /// <summary>Peak learning rate of the stage. Null: <c>train.lr</c>.</summary>
    [Range(0.0, 1.0, MinimumIsExclusive = true)] public double? Lr { get; init; }

    /// <summary>Share of the stage's steps spent warming the learning rate up. Null: <c>train.warmup_ratio</c>.</summary>
    [Range(0.0, 1.0)] public double? WarmupRatio { get; init; }

    /// <summary>Self-knowledge distillation in the stage. Null: <c>loss.use_self_distill</c>.</summary>
    public bool? UseSelfDistill { get; init; }

    /// <summary>Unified fine-tuning (sparse and multi-vector losses, ensemble) in the stage. Null: <c>loss.unified_finetuning</c>.</summary>
    public bool? UnifiedFinetuning { get; init; }

    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (string.IsNullOrWhiteSpace(Name))
            yield return ("name", "is required: the stage's folder is output_dir/stages/N-name.");
        else if (!Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            yield return ("name", $"'{Name}': use letters, digits, '-' and '_' only (it names the stage's folder).");
        if (Heads is { Count: 0 }) yield return ("heads", "name at least one of dense, sparse, colbert, or leave the key out to train model.heads.");
    }
}
