using System.Text.Json.Nodes;
using M3Train.Runtime;
using Serilog;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// Knowledge-distillation targets from the model itself (issue 11): every row's query is scored against each of its
/// positives and negatives with <c>compute_score</c>'s hybrid <c>(w_d·dense + w_s·sparse + w_c·colbert) / Σw</c>,
/// giving the <c>pos_scores</c>/<c>neg_scores</c> fine-tuning reads (M3-SPEC section 6). Each distinct text is
/// encoded once.
/// </summary>
public sealed class TeacherScorer(IM3Inference inference, Device device)
{
    public IReadOnlyList<RowScores> Score(IReadOnlyList<TrainingRowRecord> rows, HybridWeights weights, int maxQueryLength, int maxPassageLength)
    {
        var queries = new TextTable();
        var passages = new TextTable();
        var pairs = new List<(int Query, int Passage)>();
        foreach (var row in rows)
        {
            int q = queries.Add(row.Query);
            foreach (string p in row.Row.Positives.Concat(row.Row.Negatives)) pairs.Add((q, passages.Add(p)));
        }
        Log.Information("Scoring {Pairs} pairs ({Queries} distinct queries, {Passages} distinct passages) with weights dense {Dense}, sparse {Sparse}, colbert {Colbert}",
            pairs.Count, queries.Texts.Count, passages.Texts.Count, weights.Dense, weights.Sparse, weights.Colbert);
        TextEncodings encodedQueries, encodedPassages;
        using (var progress = new ProgressDisplay("encode queries", queries.Texts.Count, "texts"))
            encodedQueries = inference.Encode(queries.Texts, maxQueryLength, EncodingParts.All, progress);
        using (var progress = new ProgressDisplay("encode passages", passages.Texts.Count, "texts"))
            encodedPassages = inference.Encode(passages.Texts, maxPassageLength, EncodingParts.All, progress);
        double[] hybrid = PairScorer.Score(encodedQueries, encodedPassages, pairs, device).Hybrid(weights);

        var result = new RowScores[rows.Count];
        int next = 0;
        for (int r = 0; r < rows.Count; r++)
        {
            int positives = rows[r].Row.Positives.Length, negatives = rows[r].Row.Negatives.Length;
            result[r] = new RowScores(hybrid[next..(next + positives)], hybrid[(next + positives)..(next + positives + negatives)]);
            next += positives + negatives;
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

    /// <summary>Distinct texts in first-seen order, with their indices.</summary>
    sealed class TextTable
    {
        readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);

        public List<string> Texts { get; } = [];

        public int Add(string text)
        {
            if (_index.TryGetValue(text, out int i)) return i;
            _index[text] = Texts.Count;
            Texts.Add(text);
            return Texts.Count - 1;
        }
    }
}
