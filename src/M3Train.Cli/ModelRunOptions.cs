using System.CommandLine;

namespace M3Train.Cli;

/// <summary>The options of every verb that runs a checkpoint over texts (encode, score, eval, inspect, mine, teacher-scores), declared once.</summary>
public sealed class ModelRunOptions
{
    public Option<DirectoryInfo> Model { get; } = CommonOptions.Model();

    public Option<int> BatchSize { get; } = ModelOptions.BatchSize();

    public Option<string> Device { get; } = CommonOptions.Device();

    public Option<string> Precision { get; } = ModelOptions.Precision();

    public Option<string?> QueryInstruction { get; } = ModelOptions.QueryInstruction();

    public Option<int?> Threads { get; } = CommonOptions.Threads();

    public IEnumerable<Option> All => [Model, BatchSize, Device, Precision, QueryInstruction, Threads];

    public ModelRun Bind(ParseResult parse) =>
        new(parse.GetValue(Model)!, parse.GetValue(BatchSize), parse.GetValue(Device)!, parse.GetValue(Precision)!, parse.GetValue(QueryInstruction), parse.GetValue(Threads));
}
