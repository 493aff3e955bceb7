using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using M3Train.Model;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train score</c>: FlagEmbedding's <c>compute_score</c> for (query, passage) pairs, one JSON line each.</summary>
public static class ScoreCommand
{
    /// <summary>Pairs read, scored and written per round, so memory stays bounded on large inputs.</summary>
    const int PairsPerRound = 8192;

    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model();

    static readonly Option<FileInfo> PairsOption = new Option<FileInfo>("--pairs")
    {
        Description = "JSONL rows {\"query\": ..., \"passage\": ...}.",
        Required = true,
    }.AcceptExistingOnly();

    static readonly Option<FileInfo?> OutputOption = new("--output")
    {
        Description = "Where to write the JSON lines (default: standard output).",
    };

    static readonly Option<M3ScoreWeights> WeightsOption = new("--weights")
    {
        Description = "Weights wd,ws,wc of the dense, sparse and multi-vector scores in \"sparse+dense\" and \"colbert+sparse+dense\".",
        DefaultValueFactory = _ => new M3ScoreWeights(),
        CustomParser = result =>
        {
            try
            {
                return M3ScoreWeights.Parse(result.Tokens.Single().Value);
            }
            catch (M3TrainException e)
            {
                result.AddError($"--weights: {e.Message}");
                return null;
            }
        },
    };

    static readonly Option<int> MaxQueryLengthOption = ModelOptions.MaxLength("--max-query-length", "Truncate queries to this many tokens including <s> and </s> (capped at the model's positions).");

    static readonly Option<int> MaxPassageLengthOption = ModelOptions.MaxLength("--max-passage-length", "Truncate passages to this many tokens including <s> and </s> (capped at the model's positions).");

    static readonly Option<int> BatchSizeOption = ModelOptions.BatchSize();
    static readonly Option<string> DeviceOption = CommonOptions.Device();
    static readonly Option<string> PrecisionOption = ModelOptions.Precision();

    public static Command Create()
    {
        var command = new Command("score", "Score (query, passage) pairs with an M3 checkpoint, as FlagEmbedding's compute_score.")
        {
            ModelOption, PairsOption, OutputOption, WeightsOption, MaxQueryLengthOption, MaxPassageLengthOption,
            BatchSizeOption, DeviceOption, PrecisionOption,
        };
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ModelOption)!, parseResult.GetValue(PairsOption)!, parseResult.GetValue(OutputOption),
            parseResult.GetValue(WeightsOption)!, parseResult.GetValue(MaxQueryLengthOption),
            parseResult.GetValue(MaxPassageLengthOption), parseResult.GetValue(BatchSizeOption),
            parseResult.GetValue(DeviceOption)!, parseResult.GetValue(PrecisionOption)!));
        return command;
    }

    static int Run(DirectoryInfo model, FileInfo pairs, FileInfo? output, M3ScoreWeights weights, int maxQueryLength, int maxPassageLength,
        int batchSize, string device, string precision)
    {
        var (checkpoint, encoder) = ModelOptions.Load(model, device, precision);
        using var owned = checkpoint;
        if (output is not null) Directory.CreateDirectory(output.DirectoryName!);
        using var writer = new StreamWriter(output is null ? Console.OpenStandardOutput() : File.Create(output.FullName), new UTF8Encoding(false), bufferSize: 1 << 16);
        foreach (var round in InputRecords.Pairs(pairs.FullName).Chunk(PairsPerRound))
            foreach (var s in encoder.ComputeScores(round, weights, maxQueryLength, maxPassageLength, batchSize))
                writer.Write(Format(s) + "\n");
        return 0;
    }

    static string Format(M3PairScores s)
    {
        using var buffer = new MemoryStream();
        // The relaxed encoder writes the '+' of "sparse+dense" as is rather than as \u002B.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteNumber("dense", s.Dense);
            json.WriteNumber("sparse", s.Sparse);
            json.WriteNumber("colbert", s.Colbert);
            json.WriteNumber("sparse+dense", s.SparseDense);
            json.WriteNumber("colbert+sparse+dense", s.ColbertSparseDense);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
