using System.CommandLine;

namespace M3Train.Cli;

/// <summary>The options of the verbs that encode queries and passages with a checkpoint (eval, mine, teacher-scores, inspect).</summary>
public sealed class PairInferenceOptions
{
    public Option<int> BatchSize { get; } = ModelOptions.BatchSize();
    public Option<int> MaxQueryLength { get; } = ModelOptions.MaxLength("--max-query-length", "Truncate queries to this many tokens including <s> and </s> (capped at the model's positions).");
    public Option<int> MaxPassageLength { get; } = ModelOptions.MaxLength("--max-passage-length", "Truncate passages to this many tokens including <s> and </s> (capped at the model's positions).");
    public Option<string> Device { get; } = CommonOptions.Device();
    public Option<string> Precision { get; } = ModelOptions.Precision();
}
