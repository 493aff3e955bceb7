using System.Text.Json.Nodes;
using M3Train.Model;
using M3Train.Runtime;
using Serilog;

namespace M3Train.Eval;

/// <summary>
/// Knowledge-distillation targets from the model itself (issue 11): every row's query is scored against each of its
/// positives and negatives with <c>compute_score</c>'s <c>colbert+sparse+dense</c>,
/// <c>(w_d·dense + w_s·sparse + w_c·colbert) / (w_d + w_s + w_c)</c>, giving the <c>pos_scores</c>/<c>neg_scores</c>
/// fine-tuning reads (docs/METHOD.md, "Teacher scores from the data"). The pairs go through <see cref="IM3Inference.ScorePairs"/>, the code of
/// <c>m3train score</c>, so the same pairs get the same numbers.
/// </summary>
public sealed class TeacherScorer(IM3Inference inference)
{
    public IReadOnlyList<RowScores> Score(IReadOnlyList<TrainingRowRecord> rows, M3ScoreWeights weights, int maxQueryLength, int maxPassageLength)
    {
        var pairs = rows.SelectMany(r => r.Row.Positives.Concat(r.Row.Negatives).Select(p => (r.Query, p))).ToList();
        Log.Information("Scoring {Pairs} pairs of {Rows} rows with weights dense {Dense}, sparse {Sparse}, colbert {Colbert}",
            pairs.Count, rows.Count, weights.Dense, weights.Sparse, weights.Colbert);
        IReadOnlyList<M3PairScores> scores;
        using (var progress = new ProgressTask("score pairs", pairs.Count, "pairs"))
            scores = inference.ScorePairs(pairs, weights, maxQueryLength, maxPassageLength, progress);

        var result = new RowScores[rows.Count];
        int next = 0;
        for (int r = 0; r < rows.Count; r++)
        {
            float[] Take(int count)
            {
                var taken = scores.Skip(next).Take(count).Select(s => s.ColbertSparseDense).ToArray();
                next += count;
                return taken;
            }
            result[r] = new RowScores(Take(rows[r].Row.Positives.Length), Take(rows[r].Row.Negatives.Length));
        }
        return result;
    }

    /// <summary>The row's JSON with <c>pos_scores</c> and <c>neg_scores</c> set (replacing any it had); other fields unchanged.</summary>
    public static JsonObject Rewrite(TrainingRowRecord row, RowScores scores)
    {
        var json = (JsonObject)row.Json.DeepClone();
        json["pos_scores"] = TrainingRowFile.ScoreArray(scores.Positives);
        json["neg_scores"] = TrainingRowFile.ScoreArray(scores.Negatives);
        return json;
    }
}
