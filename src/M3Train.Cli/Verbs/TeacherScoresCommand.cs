using System.CommandLine;
using M3Train.Eval;
using Serilog;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train teacher-scores</c>: adds <c>pos_scores</c>/<c>neg_scores</c> to fine-tuning rows, computed with the
/// model's own hybrid score (issue 11), so knowledge-distillation data needs no other model; logic in <see cref="TeacherScorer"/>.
/// </summary>
public static class TeacherScoresCommand
{
    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model();

    static readonly Option<FileInfo> InputOption = new Option<FileInfo>("--input")
    {
        Description = "Fine-tuning JSONL: {\"query\", \"pos\": [...], \"neg\": [...], ...} per line.",
        Required = true,
    }.AcceptExistingOnly();

    static readonly Option<FileInfo> OutputOption = new("--output")
    {
        Description = "Where to write the rows with pos_scores and neg_scores (any old ones replaced).",
        Required = true,
    };

    static readonly Option<string> WeightsOption = new("--weights")
    {
        Description = "Weights dense,sparse,colbert of the hybrid score (w_d·d + w_s·s + w_c·c)/(w_d + w_s + w_c); compute_score's default.",
        DefaultValueFactory = _ => HybridWeights.ComputeScoreDefault.ToString(),
    };

    static readonly Option<int> BatchSizeOption = InferenceOptions.BatchSize();
    static readonly Option<int> MaxQueryLengthOption = InferenceOptions.MaxQueryLength();
    static readonly Option<int> MaxPassageLengthOption = InferenceOptions.MaxPassageLength();
    static readonly Option<string> DeviceOption = CommonOptions.Device();

    public static Command Create()
    {
        var command = new Command("teacher-scores", "Add pos_scores/neg_scores from the model's own dense+sparse+ColBERT score to fine-tuning rows.")
        {
            ModelOption, InputOption, OutputOption, WeightsOption, BatchSizeOption, MaxQueryLengthOption, MaxPassageLengthOption, DeviceOption,
        };
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ModelOption)!,
            parseResult.GetValue(InputOption)!,
            parseResult.GetValue(OutputOption)!,
            HybridWeights.Parse(parseResult.GetValue(WeightsOption)!),
            parseResult.GetValue(BatchSizeOption),
            parseResult.GetValue(MaxQueryLengthOption),
            parseResult.GetValue(MaxPassageLengthOption),
            parseResult.GetValue(DeviceOption)!));
        return command;
    }

    static int Run(DirectoryInfo model, FileInfo input, FileInfo output, HybridWeights weights, int batchSize, int maxQueryLength, int maxPassageLength, string device)
    {
        var rows = TrainingRowFile.Read(input.FullName);
        var (inference, torchDevice) = InferenceOptions.Load(model, device, batchSize);
        IReadOnlyList<RowScores> scores;
        using (inference)
        {
            if (!inference.HeadsLoaded)
                throw new M3TrainException($"{model.FullName}: no head files, so the sparse and ColBERT scores would come from random heads; teacher scores need a checkpoint with colbert_linear.pt and sparse_linear.pt");
            scores = new TeacherScorer(inference, torchDevice).Score(rows, weights,
                InferenceOptions.CapLength(maxQueryLength, inference, "--max-query-length"),
                InferenceOptions.CapLength(maxPassageLength, inference, "--max-passage-length"));
        }
        int replaced = rows.Count(r => r.Json.ContainsKey("pos_scores") || r.Json.ContainsKey("neg_scores"));
        TrainingRowFile.Write(output.FullName, rows.Select((row, i) => TeacherScorer.Rewrite(row, scores[i])));
        if (replaced > 0) Log.Information("Replaced the existing teacher scores of {Rows} rows", replaced);
        Log.Information("Wrote {Output} ({Rows} rows)", output.FullName, rows.Count);
        return 0;
    }
}
