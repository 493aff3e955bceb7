using M3Train.Eval;
using M3Train.Model;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Eval;

public class TeacherScorerTests(TinyModel model) : IClassFixture<TinyModel>
{
    [Fact]
    public void ScoresEqualTheHybridScoreOfEachPairComputedAlone()
    {
        var rows = TrainingRowFile.Read(TinyInference.TrainFile("toy_train_data1.jsonl"), "teacher-scores");
        var weights = new M3ScoreWeights(0.4, 0.2, 0.4);
        var scores = new TeacherScorer(model.Inference).Score(rows, weights, 32, 64);

        var m3 = model.Inference.Model;
        M3Representations Alone(string text, int maxLength)
        {
            int[] ids = model.Inference.Tokenizer.Encode(text, maxLength);
            using var input = tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length]);
            return m3.Encode(input, ones_like(input));
        }
        using var noGrad = no_grad();
        for (int r = 0; r < rows.Count; r++)
        {
            var row = rows[r].Row;
            Assert.Equal(row.Positives.Length, scores[r].Positives.Length);
            Assert.Equal(row.Negatives.Length, scores[r].Negatives.Length);
            using var q = Alone(row.Query!, 32);
            var passages = row.Positives.Concat(row.Negatives).ToArray();
            var computed = scores[r].Positives.Concat(scores[r].Negatives).ToArray();
            for (int i = 0; i < passages.Length; i++)
            {
                using var p = Alone(passages[i], 64);
                // One text per batch has no padding, so the training-path scores are compute_score's.
                double dense = M3Scores.Dense(q, p).item<float>();
                double sparse = M3Scores.Sparse(q, p).item<float>();
                double colbert = M3Scores.Colbert(q, p).item<float>();
                Assert.Equal((0.4 * dense + 0.2 * sparse + 0.4 * colbert) / 1.0, computed[i], 5);
            }
        }
    }

    [Fact]
    public void RewriteSetsBothScoreListsAndKeepsTheRest()
    {
        var rows = TrainingRowFile.Read(TinyInference.TrainFile("nq.jsonl"), "teacher-scores");
        var row = rows[0];
        var json = TeacherScorer.Rewrite(row, new RowScores([0.5f], Enumerable.Repeat(0.25f, row.Row.Negatives.Length).ToArray()));
        Assert.Equal(row.Json.Select(kv => kv.Key), json.Select(kv => kv.Key));
        Assert.Equal([0.5f], json["pos_scores"]!.AsArray().Select(v => v!.GetValue<float>()));
        Assert.All(json["neg_scores"]!.AsArray(), v => Assert.Equal(0.25f, v!.GetValue<float>()));
        Assert.Equal(row.Json["neg"]!.ToJsonString(), json["neg"]!.ToJsonString());
    }
}
