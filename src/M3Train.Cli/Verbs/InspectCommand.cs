using System.CommandLine;
using M3Train.Eval;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train inspect</c>: sparse and multi-vector health of a model on given texts (the figures a trainer logs)
/// and the top-weighted tokens of a few of them; logic in <see cref="ModelInspector"/>.
/// </summary>
public static class InspectCommand
{
    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model();

    static readonly Option<FileInfo> InputOption = new Option<FileInfo>("--input")
    {
        Description = "Texts: a .txt file (one a line), or JSONL of fine-tuning rows (query/pos/neg) or {\"text\": ...} rows.",
        Required = true,
    }.AcceptExistingOnly();

    static readonly Option<int> TopOption = new("--top")
    {
        Description = "Top-weighted tokens shown per example text.",
        DefaultValueFactory = _ => 10,
    };

    static readonly Option<int> ExamplesOption = new("--examples")
    {
        Description = "Example texts whose top tokens are shown.",
        DefaultValueFactory = _ => 3,
    };

    static readonly Option<int> LimitOption = new("--limit")
    {
        Description = "Read at most this many lines of the input.",
        DefaultValueFactory = _ => 1000,
    };

    static readonly PairInferenceOptions Inference = new();

    public static Command Create()
    {
        var command = new Command("inspect", "Sparse and multi-vector health of a model on given texts, with their top-weighted tokens.")
        {
            ModelOption, InputOption, TopOption, ExamplesOption, LimitOption, Inference.BatchSize, Inference.MaxQueryLength, Inference.MaxPassageLength, Inference.Device, Inference.Precision,
        };
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ModelOption)!,
            parseResult.GetValue(InputOption)!,
            parseResult.GetValue(TopOption),
            parseResult.GetValue(ExamplesOption),
            parseResult.GetValue(LimitOption),
            parseResult.GetValue(Inference.BatchSize),
            parseResult.GetValue(Inference.MaxQueryLength),
            parseResult.GetValue(Inference.MaxPassageLength),
            parseResult.GetValue(Inference.Device)!,
            parseResult.GetValue(Inference.Precision)!));
        return command;
    }

    static int Run(DirectoryInfo model, FileInfo input, int top, int examples, int limit, int batchSize, int maxQueryLength, int maxPassageLength, string device, string precision)
    {
        if (top < 1) throw new M3TrainException($"--top {top}: must be at least 1");
        if (examples < 0) throw new M3TrainException($"--examples {examples}: must be at least 0");
        if (limit < 1) throw new M3TrainException($"--limit {limit}: must be at least 1");
        var texts = InspectionInput.Read(input.FullName, limit);
        var (inference, _) = ModelInference.Load(model, device, precision, batchSize);
        using (inference)
        {
            var report = new ModelInspector(inference).Inspect(texts,
                ModelInference.CapLength(maxQueryLength, inference, "--max-query-length"),
                ModelInference.CapLength(maxPassageLength, inference, "--max-passage-length"), top, examples);
            Console.Out.Write(report.ToText());
        }
        return 0;
    }
}
