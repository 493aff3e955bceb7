using System.Text.Json.Nodes;
using M3Train.Eval;
using M3Train.Tests.Export;
using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Eval;

public class HardNegativeMinerTests(TinyModel model, ITestOutputHelper output) : IClassFixture<TinyModel>
{
    static readonly MiningOptions Short = new() { MaxQueryLength = 32, MaxPassageLength = 64 };

    /// <summary>The shipped toy rows (1 positive, 7 negatives each; 80 distinct texts), optionally edited, read back as the miner reads them.</summary>
    static IReadOnlyList<TrainingRowRecord> ToyRows(Action<List<JsonObject>>? edit = null)
    {
        var rows = File.ReadAllLines(TinyInference.TrainFile("toy_train_data1.jsonl")).Where(l => l.Trim().Length > 0)
            .Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();
        edit?.Invoke(rows);
        using var folder = new TempFolder();
        string path = folder.Sub("rows.jsonl");
        File.WriteAllLines(path, rows.Select(r => r.ToJsonString()));
        return TrainingRowFile.Read(path, "mine");
    }

    MiningResult Mine(IReadOnlyList<TrainingRowRecord> rows, MiningOptions options, IReadOnlyList<string>? pool = null)
    {
        var result = new HardNegativeMiner(model.Inference, TorchSharp.torch.CPU).Mine(rows, pool, options);
        output.WriteLine(result.Summary.ToString());
        return result;
    }

    [Fact]
    public void NoPositiveAndNoQueryTextAmongTheNegatives()
    {
        // Row 1 lists row 0's query as a negative, so that query is in the pool; ranks 0-80 cover the whole pool,
        // so every row meets its own positive (and row 0 its own query) among the candidates.
        var rows = ToyRows(r => ((JsonArray)r[1]["neg"]!).Add(r[0]["query"]!.GetValue<string>()));
        var result = Mine(rows, Short with { RangeStart = 0, RangeEnd = 100, Negatives = 15 });
        Assert.True(result.Summary.DroppedPositiveOrQuery >= rows.Count + 1, result.Summary.ToString());
        for (int r = 0; r < rows.Count; r++)
        {
            Assert.Equal(15, result.Negatives[r].Length);
            Assert.Equal(15, result.Negatives[r].Distinct().Count());
            Assert.DoesNotContain(rows[r].Query, result.Negatives[r]);
            Assert.All(rows[r].Row.Positives, p => Assert.DoesNotContain(p, result.Negatives[r]));
        }
    }

    [Fact]
    public void TheSameSeedGivesTheSameNegativesAndAnotherSeedOthers()
    {
        var rows = ToyRows();
        var options = Short with { RangeStart = 2, RangeEnd = 60, Negatives = 7, Seed = 7 };
        var first = Mine(rows, options);
        var second = Mine(rows, options);
        Assert.Equal(first.Negatives, second.Negatives);
        Assert.Equal(first.Summary, second.Summary);
        var other = Mine(rows, options with { Seed = 8 });
        Assert.NotEqual(first.Negatives.Select(n => string.Join("\n", n)), other.Negatives.Select(n => string.Join("\n", n)));
    }

    [Theory]
    [InlineData(0.3, null)]
    [InlineData(null, 0.2)]
    public void AScoreMarginDropsAPlantedNearDuplicateOfThePositive(double? relative, double? absolute)
    {
        // Row 0's positive with its final full stop removed or added: a false negative a mined list should not contain.
        // The bag-of-words encoder scores it exactly like the positive, so each filter must drop it, and exactly the
        // candidates above the filter's threshold must go (the tiny shipped model's dense vectors are all alike, so
        // its scores cannot separate a near-duplicate from anything else).
        string nearDuplicate = "";
        var rows = ToyRows(r =>
        {
            string positive = r[0]["pos"]![0]!.GetValue<string>();
            nearDuplicate = positive.EndsWith('.') ? positive[..^1] : positive + ".";
            ((JsonArray)r[3]["neg"]!).Add(nearDuplicate);
        });
        var encoder = new BagOfWordsInference();
        var everything = Short with { RangeStart = 0, RangeEnd = 100, Negatives = 100 };
        var unfiltered = new HardNegativeMiner(encoder, TorchSharp.torch.CPU).Mine(rows, null, everything);
        Assert.Contains(nearDuplicate, unfiltered.Negatives[0]);

        var filtered = new HardNegativeMiner(encoder, TorchSharp.torch.CPU).Mine(rows, null, everything with { RelativeMargin = relative, AbsoluteMargin = absolute });
        output.WriteLine(filtered.Summary.ToString());
        var query = encoder.Encode([rows[0].Query], 512, EncodingParts.Dense);
        var texts = unfiltered.Negatives[0].Append(rows[0].Row.Positives[0]).ToArray();
        var passages = encoder.Encode(texts, 512, EncodingParts.Dense);
        double positiveScore = query.DenseDot(0, passages, texts.Length - 1);
        double threshold = relative is { } r ? positiveScore * (1 - r) : positiveScore - absolute!.Value;
        var above = unfiltered.Negatives[0].Where((_, i) => query.DenseDot(0, passages, i) > threshold).ToArray();
        Assert.Contains(nearDuplicate, above);
        Assert.True(above.Length < unfiltered.Negatives[0].Length / 2, $"{above.Length} of {unfiltered.Negatives[0].Length} above the threshold");
        Assert.Equal(unfiltered.Negatives[0].Except(above), filtered.Negatives[0]);
        Assert.Equal(relative is null ? 0 : filtered.Summary.DroppedRelativeMargin, filtered.Summary.DroppedRelativeMargin);
        Assert.True(filtered.Summary.DroppedRelativeMargin + filtered.Summary.DroppedAbsoluteMargin >= above.Length);
    }

    [Fact]
    public void TooFewCandidatesArePaddedWithRandomPoolTexts()
    {
        var rows = ToyRows();
        // Ranks 5-10 leave at most 5 candidates; 15 are wanted, so 10 or more come from the rest of the 80-text pool
        // (not the 5 top ranks, which the range skips as likely false negatives).
        var options = Short with { RangeStart = 5, RangeEnd = 10, Negatives = 15 };
        var result = Mine(rows, options);
        var top = ExactDenseSearch.TopK(model.Inference.Encode(rows.Select(r => r.Query).ToArray(), 32, EncodingParts.Dense),
            model.Inference.Encode(rows.SelectMany(r => r.Row.Positives.Concat(r.Row.Negatives)).Distinct().ToArray(), 64, EncodingParts.Dense),
            80, 5, TorchSharp.torch.CPU);
        var pool = rows.SelectMany(r => r.Row.Positives.Concat(r.Row.Negatives)).Distinct().ToArray();
        Assert.Equal(rows.Count, result.Summary.RowsPadded);
        Assert.Equal(0, result.Summary.RowsShort);
        for (int r = 0; r < rows.Count; r++)
        {
            Assert.Equal(15, result.Negatives[r].Distinct().Count());
            Assert.DoesNotContain(rows[r].Query, result.Negatives[r]);
            Assert.All(rows[r].Row.Positives, p => Assert.DoesNotContain(p, result.Negatives[r]));
            Assert.All(top[r], hit => Assert.DoesNotContain(pool[hit.DocIndex], result.Negatives[r]));
        }
        Assert.InRange(result.Summary.PaddingNegatives, 10 * rows.Count, 15 * rows.Count);

        // A pool of 4 texts cannot give 15 negatives: the rows keep what there is and are counted.
        var small = Mine(rows, Short with { Negatives = 15, RangeStart = 0, RangeEnd = 10 }, ["alpha", "beta", "gamma", "delta"]);
        Assert.Equal(rows.Count, small.Summary.RowsShort);
        Assert.All(small.Negatives, n => Assert.Equal(["alpha", "beta", "delta", "gamma"], n.Order()));
    }

    [Fact]
    public void ARowWithNoNegativeLeftIsFilledDroppedOrKeptAsThePolicySays()
    {
        // Normalized dense scores lie in [-1, 1], so an absolute margin of 2 rejects every candidate and every padding
        // text of every row, whatever the model: each row is left empty.
        var rows = ToyRows();
        var rejectAll = Short with { RangeStart = 2, RangeEnd = 60, Negatives = 7, AbsoluteMargin = 2.0 };
        var everyRow = Enumerable.Range(0, rows.Count).ToArray();

        var filled = Mine(rows, rejectAll);
        Assert.Equal(everyRow, filled.EmptyRows);
        Assert.Empty(filled.DroppedRows);
        Assert.Equal((rows.Count, rows.Count, 7L * rows.Count, 0, 0), (filled.Summary.RowsEmpty, filled.Summary.RowsFilled,
            filled.Summary.FillNegatives, filled.Summary.RowsDropped, filled.Summary.RowsShort));
        for (int r = 0; r < rows.Count; r++)
        {
            Assert.Equal(7, filled.Negatives[r].Distinct().Count());
            Assert.DoesNotContain(rows[r].Query, filled.Negatives[r]);
            Assert.All(rows[r].Row.Positives, p => Assert.DoesNotContain(p, filled.Negatives[r]));
        }
        Assert.Equal(filled.Negatives, Mine(rows, rejectAll).Negatives);

        var dropped = Mine(rows, rejectAll with { OnEmpty = EmptyNegativesPolicy.Drop });
        Assert.Equal(everyRow, dropped.DroppedRows.Order());
        Assert.Equal((rows.Count, 0, rows.Count), (dropped.Summary.RowsEmpty, dropped.Summary.RowsFilled, dropped.Summary.RowsDropped));

        var kept = Mine(rows, rejectAll with { OnEmpty = EmptyNegativesPolicy.Keep });
        Assert.Empty(kept.DroppedRows);
        Assert.All(kept.Negatives, Assert.Empty);
        Assert.Equal((rows.Count, 0, 0), (kept.Summary.RowsEmpty, kept.Summary.RowsFilled, kept.Summary.RowsDropped));
    }

    [Fact]
    public void ARowThePoolCannotFillIsLeftOutAndTheOthersKeepTheirNegatives()
    {
        // A pool of row 0's own positive and query: row 0 has nothing to mine even from random texts, every other row
        // gets both texts (short of the 7 wanted, but trainable).
        var rows = ToyRows();
        string[] pool = [rows[0].Row.Positives[0], rows[0].Query];
        foreach (var policy in new[] { EmptyNegativesPolicy.Fill, EmptyNegativesPolicy.Drop })
        {
            var result = Mine(rows, Short with { RangeStart = 0, RangeEnd = 10, Negatives = 7, OnEmpty = policy }, pool);
            Assert.Equal([0], result.EmptyRows);
            Assert.Equal([0], result.DroppedRows);
            Assert.Equal((1, 0, 1, rows.Count - 1), (result.Summary.RowsEmpty, result.Summary.RowsFilled, result.Summary.RowsDropped, result.Summary.RowsShort));
            Assert.All(result.Negatives.Skip(1), n => Assert.Equal(pool.Order(), n.Order()));
        }
    }

    [Fact]
    public void RewriteReplacesNegAndRemovesStaleScoresKeepingEverythingElse()
    {
        var rows = ToyRows(r =>
        {
            r[0]["prompt"] = "Represent this: ";
            r[0]["pos_scores"] = new JsonArray(0.9);
            r[0]["neg_scores"] = new JsonArray(Enumerable.Range(0, 7).Select(_ => (JsonNode?)0.1).ToArray());
            r[0]["extra"] = new JsonObject { ["nested"] = 1 };
        });
        var (json, removed) = HardNegativeMiner.Rewrite(rows[0], ["n1", "n2"]);
        Assert.True(removed);
        Assert.Equal(["query", "pos", "neg", "prompt", "extra"], json.Select(kv => kv.Key));
        Assert.Equal(["n1", "n2"], json["neg"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(rows[0].Json["pos"]!.ToJsonString(), json["pos"]!.ToJsonString());
        Assert.Equal("{\"nested\":1}", json["extra"]!.ToJsonString());
        Assert.False(HardNegativeMiner.Rewrite(rows[1], ["x"]).RemovedScores);
        Assert.NotNull(rows[0].Json["neg_scores"]); // the input row is left as it was
    }
}
