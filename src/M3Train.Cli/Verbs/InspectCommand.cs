using System.CommandLine;
using M3Train.Eval;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train inspect</c>: sparse and multi-vector health of a model on given texts (the figures a trainer logs)
/// and the top-weighted tokens of a few of them; logic in <see cref="ModelInspector"/>.
/// </summary>
public static class InspectCommand
{
    static readonly Option<FileInfo> InputOption =
        PathOptions.Input("--input", "Texts: a .txt file (one a line), or JSONL of fine-tuning rows (query/pos/neg) or {\"text\": ...} rows.");

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
            InputOption, TopOption, ExamplesOption, LimitOption,
        };
        foreach (var option in Inference.All) command.Add(option);
        command.SetAction(parse => Run(Inference.Bind(parse), new InspectRequest(
            parse.GetValue(InputOption)!, parse.GetValue(TopOption), parse.GetValue(ExamplesOption), parse.GetValue(LimitOption))));
        return command;
    }

    static int Run(PairInference inference, InspectRequest request)
    {
        if (request.Top < 1) throw new M3TrainException($"--top {request.Top}: must be at least 1");
        if (request.Examples < 0) throw new M3TrainException($"--examples {request.Examples}: must be at least 0");
        if (request.Limit < 1) throw new M3TrainException($"--limit {request.Limit}: must be at least 1");
        var texts = InspectionInput.Read(request.Input.FullName, request.Limit);
        texts = texts with { Rows = texts.Rows.Select(r => r with { Query = inference.Run.Query(r.Query!) }).ToList() };
        var (loaded, _) = ModelInference.Load(inference.Run);
        using (loaded)
        {
            var (query, passage) = ModelInference.CapLengths(inference, loaded);
            var report = new ModelInspector(loaded).Inspect(texts, query, passage, request.Top, request.Examples);
            Console.Out.Write(report.ToText());
        }
        return 0;
    }
}
