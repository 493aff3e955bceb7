using System.CommandLine;

namespace M3Train.Cli;

/// <summary>The options of the verbs that read fine-tuning rows and write them back enriched (mine, teacher-scores), declared once.</summary>
public sealed class RowRewriteOptions(string outputDescription)
{
    public PairInferenceOptions Inference { get; } = new();

    public Option<FileInfo> Input { get; } = CommonOptions.FinetuneRows();

    public Option<FileInfo> Output { get; } = PathOptions.Output("--output", outputDescription);

    public IEnumerable<Option> All => [.. Inference.All, Input, Output];

    public RowRewrite Bind(ParseResult parse) => new(Inference.Bind(parse), parse.GetValue(Input)!, parse.GetValue(Output)!);
}
