using System.CommandLine;

namespace M3Train.Cli;

/// <summary>The options of the verbs that encode queries and passages with a checkpoint (score, eval, inspect, mine, teacher-scores), declared once.</summary>
public sealed class PairInferenceOptions
{
    public ModelRunOptions Run { get; } = new();

    public Option<int> MaxQueryLength { get; } = ModelOptions.MaxLength("--max-query-length", "Truncate queries to this many tokens including <s> and </s> (capped at the model's positions).");

    public Option<int> MaxPassageLength { get; } = ModelOptions.MaxLength("--max-passage-length", "Truncate passages to this many tokens including <s> and </s> (capped at the model's positions).");

    public IEnumerable<Option> All => [.. Run.All, MaxQueryLength, MaxPassageLength];

    public PairInference Bind(ParseResult parse) =>
        new(Run.Bind(parse), parse.GetValue(MaxQueryLength), parse.GetValue(MaxPassageLength));
}
