using System.CommandLine;
using M3Train.Eval;
using M3Train.Model;
using M3Train.Runtime;
using Serilog;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train teacher-scores</c>: adds <c>pos_scores</c>/<c>neg_scores</c> to fine-tuning rows, computed with the
/// model's own hybrid score (issue 11), so knowledge-distillation data needs no other model; logic in <see cref="TeacherScorer"/>.
/// </summary>
public static class TeacherScoresCommand
{
    static readonly Option<string> WeightsOption = new("--weights")
    {
        Description = "Weights wd,ws,wc of the hybrid score (wd·dense + ws·sparse + wc·colbert)/(wd + ws + wc), compute_score's colbert+sparse+dense (default as m3train score).",
        DefaultValueFactory = _ => "1,1,1",
    };

    static readonly RowRewriteOptions Rows = new("Where to write the rows with pos_scores and neg_scores (any old ones replaced).");

    public static Command Create()
    {
        var command = new Command("teacher-scores", "Add pos_scores/neg_scores from the model's own dense+sparse+ColBERT score to fine-tuning rows.")
        {
            WeightsOption,
        };
        foreach (var option in Rows.All) command.Add(option);
        command.SetAction(parse => Run(Rows.Bind(parse), ModelInference.Weights(parse.GetValue(WeightsOption)!)));
        return command;
    }

    static int Run(RowRewrite job, M3ScoreWeights weights)
    {
        VerbOutput.Check("--output", job.Output, ("--input", job.Input));
        var rows = TrainingRowFile.Read(job.Input.FullName, "teacher-scores");
        var (inference, _) = ModelInference.Load(job.Inference.Run);
        IReadOnlyList<RowScores> scores;
        using (inference)
        {
            if (!inference.HeadsLoaded)
                throw new M3TrainException($"{job.Inference.Run.Model.FullName}: no head files, so the sparse and ColBERT scores would come from random heads; teacher scores need a checkpoint with colbert_linear.pt and sparse_linear.pt");
            var (query, passage) = ModelInference.CapLengths(job.Inference, inference);
            // Scored as the model reads them in training: after --query-instruction; the rows written keep their queries.
            var asEncoded = rows.Select(r => r with { Row = r.Row with { Query = job.Inference.Run.Query(r.Query) } }).ToList();
            scores = new TeacherScorer(inference).Score(asEncoded, weights, query, passage);
        }
        int replaced = rows.Count(r => r.Json.ContainsKey("pos_scores") || r.Json.ContainsKey("neg_scores"));
        TrainingRowFile.Write(job.Output.FullName, rows.Select((row, i) => TeacherScorer.Rewrite(row, FiniteScores(job.Input, row, scores[i]))));
        if (replaced > 0) Log.Information("Replaced the existing teacher scores of {Rows} rows", replaced);
        Log.Information("Wrote {Output} ({Rows} rows)", job.Output.FullName, rows.Count);
        return 0;
    }

    static RowScores FiniteScores(FileInfo input, TrainingRowRecord row, RowScores scores) =>
        FiniteValues.All(scores.Positives) && FiniteValues.All(scores.Negatives)
            ? scores
            : throw NonFiniteOutput.Error(input.FullName, row.Line, "teacher score");
}
