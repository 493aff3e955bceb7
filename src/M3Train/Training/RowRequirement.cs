using M3Train.Data;

namespace M3Train.Training;

/// <summary>The rows a recipe trains on, and what to tell a user whose data holds another kind.</summary>
/// <param name="Kind">The row kind every dataset must hold.</param>
/// <param name="Verb">The command as the user typed it, for the message.</param>
/// <param name="Needs">What such rows look like, for the message.</param>
public sealed record RowRequirement(RowKind Kind, string Verb, string Needs)
{
    public static readonly RowRequirement Finetune = new(RowKind.Group, "finetune", "{\"query\",\"pos\",\"neg\"} rows");

    public static readonly RowRequirement RetroMae = new(RowKind.Text, "pretrain with pretrain.objective: retromae", "{\"text\"} rows");

    public static readonly RowRequirement Contrastive = new(RowKind.Group, "pretrain with pretrain.objective: contrastive", "{\"query\",\"pos\"} pairs");
}
