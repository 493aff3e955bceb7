using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using M3Train.Model;
using M3Train.Runtime;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train score</c>: FlagEmbedding's <c>compute_score</c> for (query, passage) pairs, one JSON line each.</summary>
public static class ScoreCommand
{
    /// <summary>Pairs read, scored and written per round, so memory stays bounded on large inputs.</summary>
    const int PairsPerRound = 8192;

    static readonly Option<FileInfo> PairsOption = PathOptions.Input("--pairs", "JSONL rows {\"query\": ..., \"passage\": ...}.");

    static readonly Option<FileInfo> OutputOption = PathOptions.Output("--output", "Where to write the JSON lines (default and -: standard output).", required: false);

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

    static readonly PairInferenceOptions Inference = new();

    public static Command Create()
    {
        var command = new Command("score", "Score (query, passage) pairs with an M3 checkpoint, as FlagEmbedding's compute_score.")
        {
            PairsOption, OutputOption, WeightsOption,
        };
        foreach (var option in Inference.All) command.Add(option);
        command.SetAction(parse => Run(Inference.Bind(parse),
            parse.GetValue(PairsOption)!, parse.GetValue(OutputOption) ?? new FileInfo("-"), parse.GetValue(WeightsOption)!));
        return command;
    }

    static int Run(PairInference inference, FileInfo pairs, FileInfo output, M3ScoreWeights weights)
    {
        VerbOutput.Check("--output", output, ("--pairs", pairs));
        var (checkpoint, encoder) = ModelOptions.Load(inference.Run);
        using var owned = checkpoint;
        using var file = VerbOutput.Open("--output", output, ("--pairs", pairs));
        using (var writer = new StreamWriter(file.Stream, new UTF8Encoding(false), bufferSize: 1 << 16, leaveOpen: true))
            foreach (var round in InputRecords.Pairs(pairs.FullName).Chunk(PairsPerRound))
            {
                var scores = encoder.ComputeScores(round.Select(p => (inference.Run.Query(p.Query), p.Passage)).ToList(), weights,
                    inference.MaxQueryLength, inference.MaxPassageLength, inference.Run.BatchSize);
                for (int i = 0; i < round.Length; i++)
                {
                    var s = scores[i];
                    if (!FiniteValues.All([s.Dense, s.Sparse, s.Colbert]))
                        throw NonFiniteOutput.Error(pairs.FullName, round[i].Line, "score");
                    writer.Write(Format(s) + "\n");
                }
            }
        file.Commit();
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
