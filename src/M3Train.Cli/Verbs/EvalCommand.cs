using System.CommandLine;
using M3Train.Eval;
using Serilog;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train eval</c>: retrieval quality of a checkpoint on a BEIR-format test set (nDCG@10, Recall@100, MRR@10)
/// in the dense, sparse, ColBERT, dense+sparse and all-three modes; logic in <see cref="RetrievalEvaluator"/>.
/// </summary>
public static class EvalCommand
{
    static readonly Option<FileInfo> CorpusOption = PathOptions.Input("--corpus", "BEIR corpus.jsonl: {\"_id\", \"title\", \"text\"} per line.");

    static readonly Option<FileInfo> QueriesOption = PathOptions.Input("--queries", "BEIR queries.jsonl: {\"_id\", \"text\"} per line.");

    static readonly Option<FileInfo> QrelsOption = PathOptions.Input("--qrels", "Qrels TSV: query-id, corpus-id, score (header line optional).");

    static readonly Option<string> ModesOption = new("--modes")
    {
        Description = "Comma-separated: dense, sparse, colbert, dense+sparse, all.",
        DefaultValueFactory = _ => string.Join(",", RetrievalModes.Every.Select(RetrievalModes.Name)),
    };

    static readonly Option<string> WeightsOption = new("--weights")
    {
        Description = "Hybrid weights dense,sparse,colbert for dense+sparse and all (the paper's MIRACL weights by default).",
        DefaultValueFactory = _ => "1,0.3,1",
    };

    static readonly Option<int> TopKOption = new("--top-k")
    {
        Description = "Results kept per query and mode.",
        DefaultValueFactory = _ => 100,
    };

    static readonly Option<int> RerankKOption = new("--rerank-k")
    {
        Description = "Dense candidates that colbert and all re-rank; depth of the lists dense+sparse fuses.",
        DefaultValueFactory = _ => 200,
    };

    static readonly Option<FileInfo> OutputOption = PathOptions.Output("--output", "Also write the report as JSON to this file.", required: false);

    static readonly Option<DirectoryInfo?> CacheDirOption = new("--cache-dir")
    {
        Description = "Cache corpus encodings here, keyed by model files, corpus content and max length, and reuse them.",
    };

    static readonly PairInferenceOptions Inference = new();

    public static Command Create()
    {
        var command = new Command("eval", "Evaluate retrieval on a BEIR-format set: nDCG@10, Recall@100, MRR@10 per mode.")
        {
            CorpusOption, QueriesOption, QrelsOption, ModesOption, WeightsOption, TopKOption, RerankKOption, OutputOption, CacheDirOption,
        };
        foreach (var option in Inference.All) command.Add(option);
        command.SetAction(parse => Run(Inference.Bind(parse), new EvalRequest(
            parse.GetValue(CorpusOption)!, parse.GetValue(QueriesOption)!, parse.GetValue(QrelsOption)!,
            new RetrievalEvalOptions
            {
                Modes = RetrievalModes.Parse(parse.GetValue(ModesOption)!),
                Weights = ModelInference.Weights(parse.GetValue(WeightsOption)!),
                TopK = parse.GetValue(TopKOption),
                RerankK = parse.GetValue(RerankKOption),
                CacheDir = parse.GetValue(CacheDirOption)?.FullName,
            },
            parse.GetValue(OutputOption))));
        return command;
    }

    static int Run(PairInference inference, EvalRequest request)
    {
        var options = request.Options;
        options.Validate();
        if (request.Output is { } output)
            VerbOutput.Check("--output", output, ("--corpus", request.Corpus), ("--queries", request.Queries), ("--qrels", request.Qrels));
        var data = BeirDataset.Load(request.Corpus.FullName, request.Queries.FullName, request.Qrels.FullName);
        data = data with { Queries = data.Queries.Select(q => q with { Text = inference.Run.Query(q.Text) }).ToList() };
        Log.Information("{Corpus}: {Documents} documents; {Queries}: {Evaluated} queries with relevant documents",
            request.Corpus.FullName, data.Corpus.Count, request.Queries.FullName, data.EvaluatedQueries.Count);

        var model = inference.Run.Model;
        var (loaded, torchDevice) = ModelInference.Load(inference.Run);
        using (loaded)
        {
            var (query, passage) = ModelInference.CapLengths(inference, loaded);
            options = options with { MaxQueryLength = query, MaxPassageLength = passage };
            string? modelHash = null;
            if (options.CacheDir is not null && !loaded.HeadsLoaded)
                Log.Warning("{Model} has no head files, so its sparse and ColBERT heads are random for this run: corpus encodings are not cached", model.FullName);
            else if (options.CacheDir is not null)
                modelHash = ContentHash.OfModel(model.FullName);

            var evaluation = new RetrievalEvaluator(loaded, torchDevice).Evaluate(data, options, modelHash);
            Console.Out.Write(evaluation.ToTable());
            if (request.Output is { } report)
                Log.Information("Wrote {Output}", VerbOutput.WriteAllText("--output", report, evaluation.ToJson()));
        }
        return 0;
    }
}
