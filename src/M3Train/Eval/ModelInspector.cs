using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;

namespace M3Train.Eval;

/// <summary>
/// <c>m3train inspect</c>: the <see cref="SparseHealth"/> figures a trainer logs, for a model on given texts
/// (queries, passages and plain texts measured apart, since the sparse head treats them differently); for
/// fine-tuning rows also the mean dense/sparse/ColBERT score of positives versus negatives; and the top-weighted
/// tokens of a few texts, decoded, to show what the sparse head learned.
/// </summary>
public sealed class ModelInspector(IM3Inference inference)
{
    public InspectionReport Inspect(InspectionInput input, int maxQueryLength, int maxPassageLength, int topTokens = 10, int examples = 3)
    {
        var queries = input.Rows.Select(r => r.Query!).Distinct(StringComparer.Ordinal).ToList();
        var passages = input.Rows.SelectMany(r => r.Positives.Concat(r.Negatives)).Distinct(StringComparer.Ordinal).ToList();
        var groups = new List<InspectionGroup>();
        if (queries.Count > 0) groups.Add(new InspectionGroup("queries", Measure("queries", queries, maxQueryLength)));
        if (passages.Count > 0) groups.Add(new InspectionGroup("passages", Measure("passages", passages, maxPassageLength)));
        if (input.Texts.Count > 0) groups.Add(new InspectionGroup("texts", Measure("texts", input.Texts, maxPassageLength)));

        HeadScoreMeans? positives = null, negatives = null;
        if (input.Rows.Count > 0)
        {
            var pairs = new List<(string Query, string Passage)>();
            var positivePairs = new List<int>();
            var negativePairs = new List<int>();
            foreach (var row in input.Rows)
            {
                foreach (string p in row.Positives)
                {
                    positivePairs.Add(pairs.Count);
                    pairs.Add((row.Query!, p));
                }
                foreach (string n in row.Negatives)
                {
                    negativePairs.Add(pairs.Count);
                    pairs.Add((row.Query!, n));
                }
            }
            IReadOnlyList<M3PairScores> scores;
            using (var progress = new ProgressTask("score pairs", pairs.Count, "pairs"))
                scores = inference.ScorePairs(pairs, new M3ScoreWeights(), maxQueryLength, maxPassageLength, progress);
            positives = HeadScoreMeans.Of(scores, positivePairs);
            negatives = HeadScoreMeans.Of(scores, negativePairs);
        }

        var shown = input.Texts.Concat(input.Rows.SelectMany(r => new[] { r.Query!, r.Positives[0] })).Take(examples).ToList();
        var lexical = inference.Encode(shown, maxPassageLength, EncodingParts.Lexical).Lexical;
        var tokenExamples = shown.Select((text, i) => new TokenWeightExample(text,
            lexical[i].OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).Take(topTokens)
                .Select(kv => (Decode(kv.Key), kv.Value)).ToList())).ToList();
        return new InspectionReport(groups, positives, negatives, tokenExamples);
    }

    SparseHealthFigures Measure(string label, IReadOnlyList<string> texts, int maxLength)
    {
        var total = SparseHealthFigures.Empty;
        using var progress = new ProgressTask($"measure {label}", texts.Count, "texts");
        inference.ForEachBatch(texts, maxLength, (_, reps) => total += SparseHealth.Measure(reps), progress);
        return total;
    }

    /// <summary>The token as text (SentencePiece's word-start mark as a space, trimmed), or its piece when that is empty.</summary>
    string Decode(int id)
    {
        string text = inference.Tokenizer.Decode([id]).Trim();
        return text.Length > 0 ? text : inference.Tokenizer.IdToToken(id);
    }
}
