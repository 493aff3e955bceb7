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
    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model();

    static readonly Option<FileInfo> CorpusOption = new Option<FileInfo>("--corpus")
    {
        Description = "BEIR corpus.jsonl: {\"_id\", \"title\", \"text\"} per line.",
        Required = true,
    }.AcceptExistingOnly();

    static readonly Option<FileInfo> QueriesOption = new Option<FileInfo>("--queries")
    {
        Description = "BEIR queries.jsonl: {\"_id\", \"text\"} per line.",
        Required = true,
    }.AcceptExistingOnly();

    static readonly Option<FileInfo> QrelsOption = new Option<FileInfo>("--qrels")
    {
        Description = "Qrels TSV: query-id, corpus-id, score (header line optional).",
        Required = true,
    }.AcceptExistingOnly();

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

    static readonly Option<FileInfo?> OutputOption = new("--output")
    {
        Description = "Also write the report as JSON to this file.",
    };

    static readonly Option<DirectoryInfo?> CacheDirOption = new("--cache-dir")
    {
        Description = "Cache corpus encodings here, keyed by model files, corpus content and max length, and reuse them.",
    };

    static readonly PairInferenceOptions Inference = new();

    public static Command Create()
    {
        var command = new Command("eval", "Evaluate retrieval on a BEIR-format set: nDCG@10, Recall@100, MRR@10 per mode.")
        {
            ModelOption, CorpusOption, QueriesOption, QrelsOption, ModesOption, WeightsOption, TopKOption, RerankKOption,
            OutputOption, CacheDirOption, Inference.BatchSize, Inference.MaxQueryLength, Inference.MaxPassageLength, Inference.Device, Inference.Precision,
        };
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ModelOption)!,
            parseResult.GetValue(CorpusOption)!,
            parseResult.GetValue(QueriesOption)!,
            parseResult.GetValue(QrelsOption)!,
            parseResult.GetValue(ModesOption)!,
            parseResult.GetValue(WeightsOption)!,
            parseResult.GetValue(TopKOption),
            parseResult.GetValue(RerankKOption),
            parseResult.GetValue(OutputOption),
            parseResult.GetValue(CacheDirOption),
            parseResult.GetValue(Inference.BatchSize),
            parseResult.GetValue(Inference.MaxQueryLength),
            parseResult.GetValue(Inference.MaxPassageLength),
            parseResult.GetValue(Inference.Device)!,
            parseResult.GetValue(Inference.Precision)!));
        return command;
    }

    static int Run(DirectoryInfo model, FileInfo corpus, FileInfo queries, FileInfo qrels, string modes, string weights, int topK, int rerankK,
        FileInfo? output, DirectoryInfo? cacheDir, int batchSize, int maxQueryLength, int maxPassageLength, string device, string precision)
    {
        var options = new RetrievalEvalOptions
        {
            Modes = RetrievalModes.Parse(modes),
            Weights = ModelInference.Weights(weights),
            TopK = topK,
            RerankK = rerankK,
            CacheDir = cacheDir?.FullName,
        };
        options.Validate();
        var data = BeirDataset.Load(corpus.FullName, queries.FullName, qrels.FullName);
        Log.Information("{Corpus}: {Documents} documents; {Queries}: {Evaluated} queries with relevant documents",
            corpus.FullName, data.Corpus.Count, queries.FullName, data.EvaluatedQueries.Count);

        var (inference, torchDevice) = ModelInference.Load(model, device, precision, batchSize);
        using (inference)
        {
            options = options with
            {
                MaxQueryLength = ModelInference.CapLength(maxQueryLength, inference, "--max-query-length"),
                MaxPassageLength = ModelInference.CapLength(maxPassageLength, inference, "--max-passage-length"),
            };
            string? modelHash = null;
            if (cacheDir is not null && !inference.HeadsLoaded)
                Log.Warning("{Model} has no head files, so its sparse and ColBERT heads are random for this run: corpus encodings are not cached", model.FullName);
            else if (cacheDir is not null)
                modelHash = ContentHash.OfModel(model.FullName);

            var evaluation = new RetrievalEvaluator(inference, torchDevice).Evaluate(data, options, modelHash);
            Console.Out.Write(evaluation.ToTable());
            if (output is not null)
            {
                if (output.DirectoryName is { } folder) Directory.CreateDirectory(folder);
                File.WriteAllText(output.FullName, evaluation.ToJson());
                Log.Information("Wrote {Output}", output.FullName);
            }
        }
        return 0;
    }
}
