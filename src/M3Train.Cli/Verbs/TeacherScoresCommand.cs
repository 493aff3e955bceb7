using System.CommandLine;
using M3Train.Eval;
using M3Train.Model;
using Serilog;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train teacher-scores</c>: adds <c>pos_scores</c>/<c>neg_scores</c> to fine-tuning rows, computed with the
/// model's own hybrid score (issue 11), so knowledge-distillation data needs no other model; logic in <see cref="TeacherScorer"/>.
/// </summary>
public static class TeacherScoresCommand
{
    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model();

    static readonly Option<FileInfo> InputOption = CommonOptions.FinetuneRows();

    static readonly Option<FileInfo> OutputOption = new("--output")
    {
        Description = "Where to write the rows with pos_scores and neg_scores (any old ones replaced).",
        Required = true,
    };

    static readonly Option<string> WeightsOption = new("--weights")
    {
        Description = "Weights wd,ws,wc of the hybrid score (wd·dense + ws·sparse + wc·colbert)/(wd + ws + wc), compute_score's colbert+sparse+dense (default as m3train score).",
        DefaultValueFactory = _ => "1,1,1",
    };

    static readonly PairInferenceOptions Inference = new();

    public static Command Create()
    {
        var command = new Command("teacher-scores", "Add pos_scores/neg_scores from the model's own dense+sparse+ColBERT score to fine-tuning rows.")
        {
            ModelOption, InputOption, OutputOption, WeightsOption, Inference.BatchSize, Inference.MaxQueryLength, Inference.MaxPassageLength, Inference.Device, Inference.Precision,
        };
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ModelOption)!,
            parseResult.GetValue(InputOption)!,
            parseResult.GetValue(OutputOption)!,
            ModelInference.Weights(parseResult.GetValue(WeightsOption)!),
            parseResult.GetValue(Inference.BatchSize),
            parseResult.GetValue(Inference.MaxQueryLength),
            parseResult.GetValue(Inference.MaxPassageLength),
            parseResult.GetValue(Inference.Device)!,
            parseResult.GetValue(Inference.Precision)!));
        return command;
    }

    static int Run(DirectoryInfo model, FileInfo input, FileInfo output, M3ScoreWeights weights, int batchSize, int maxQueryLength, int maxPassageLength,
        string device, string precision)
    {
        var rows = TrainingRowFile.Read(input.FullName);
        var (inference, _) = ModelInference.Load(model, device, precision, batchSize);
        IReadOnlyList<RowScores> scores;
        using (inference)
        {
            if (!inference.HeadsLoaded)
                throw new M3TrainException($"{model.FullName}: no head files, so the sparse and ColBERT scores would come from random heads; teacher scores need a checkpoint with colbert_linear.pt and sparse_linear.pt");
            scores = new TeacherScorer(inference).Score(rows, weights,
                ModelInference.CapLength(maxQueryLength, inference, "--max-query-length"),
                ModelInference.CapLength(maxPassageLength, inference, "--max-passage-length"));
        }
        int replaced = rows.Count(r => r.Json.ContainsKey("pos_scores") || r.Json.ContainsKey("neg_scores"));
        TrainingRowFile.Write(output.FullName, rows.Select((row, i) => TeacherScorer.Rewrite(row, scores[i])));
        if (replaced > 0) Log.Information("Replaced the existing teacher scores of {Rows} rows", replaced);
        Log.Information("Wrote {Output} ({Rows} rows)", output.FullName, rows.Count);
        return 0;
    }
}
