using System.Text.Json.Nodes;
using M3Train.Data;
using M3Train.Runtime;
using M3Train.Text;
using Serilog;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// ANCE-style hard negatives (docs/METHOD.md, "Hard-negative mining"): encode the candidate pool (all pos and neg texts of the input, or
/// a given pool) and the queries with the model; dense top-<c>b</c> search; keep ranks [a, b); drop the row's
/// positives and its query text; drop candidates a score filter rejects (issue 11); sample the wanted number; pad
/// with random pool texts when too few are left.
/// </summary>
/// <remarks>
/// <para>Score filters compare a candidate's dense score with the row's <b>weakest</b> positive (the smallest dense
/// score over its positives): a text scoring as high as a known positive is as likely to be relevant.
/// <c>relative_margin</c> drops scores above <c>positive × (1 - margin)</c>, <c>absolute_margin</c> scores above
/// <c>positive - margin</c> (sentence-transformers' <c>mine_hard_negatives</c> rules). Padding texts pass the same
/// filters and are never a positive, the query, or one of the top ranks before the range. Only a row left with no
/// negative at all is filled (<see cref="EmptyNegativesPolicy.Fill"/>) with texts that merely avoid its positives and
/// query: with a dense head whose scores are all alike, a margin can reject every text of the pool.</para>
/// <para>Deterministic: ranks and scores are computed reproducibly (<see cref="ExactDenseSearch"/>), and each row's
/// draws come from <see cref="DataRandom"/> keyed by (seed, row index), so a row's negatives depend on the seed, its
/// own candidates and the pool, not on the other rows. Sampled negatives keep their rank order (hardest first),
/// padding follows.</para>
/// </remarks>
public sealed class HardNegativeMiner(IM3Inference inference, Device device)
{
    public MiningResult Mine(IReadOnlyList<TrainingRowRecord> rows, IReadOnlyList<string>? candidatePool, MiningOptions options)
    {
        options.Validate();
        var pool = Distinct(candidatePool ?? rows.SelectMany(r => r.Row.Positives.Concat(r.Row.Negatives)));
        var poolIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < pool.Count; i++) poolIndex[pool[i]] = i;
        // Positives outside the pool are encoded after it (their scores set the margins) but never searched.
        var passages = pool.Concat(Distinct(rows.SelectMany(r => r.Row.Positives)).Where(p => !poolIndex.ContainsKey(p))).ToList();
        var passageIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < passages.Count; i++) passageIndex[passages[i]] = i;

        Log.Information("Mining {Rows} rows against a pool of {Pool} texts (ranks {Start}-{End}, {Negatives} negatives, seed {Seed})",
            rows.Count, pool.Count, options.RangeStart, options.RangeEnd, options.Negatives, options.Seed);
        TextEncodings encodedPassages, encodedQueries;
        using (var progress = new ProgressTask("encode passages", passages.Count, "texts"))
            encodedPassages = inference.Encode(passages, options.MaxPassageLength, EncodingParts.Dense, progress);
        using (var progress = new ProgressTask("encode queries", rows.Count, "texts"))
            encodedQueries = inference.Encode(rows.Select(r => options.QueryInstruction + r.Query).ToArray(), options.MaxQueryLength, EncodingParts.Dense, progress);
        if (encodedPassages.FirstNonFinite() is var (badPassage, _))
            throw NonFinite($"the passage \"{Shorten(passages[badPassage])}\"");
        if (encodedQueries.FirstNonFinite() is var (badRow, _))
            throw NonFinite($"the query of the row at line {rows[badRow].Line}");

        var hits = ExactDenseSearch.TopK(encodedQueries, encodedPassages, pool.Count, options.RangeEnd, device);

        var counts = new Counts();
        var negatives = new string[rows.Count][];
        var empty = new List<int>();
        var dropped = new HashSet<int>();
        for (int r = 0; r < rows.Count; r++)
        {
            var row = rows[r];
            double weakestPositive = row.Row.Positives.Min(p => encodedQueries.DenseDot(r, encodedPassages, passageIndex[p]));
            var forbidden = new HashSet<int>(row.Row.Positives.Append(row.Query).Where(poolIndex.ContainsKey).Select(t => poolIndex[t]));
            var kept = new List<int>();
            for (int rank = options.RangeStart; rank < hits[r].Length; rank++)
            {
                counts.Candidates++;
                int doc = hits[r][rank].DocIndex;
                if (forbidden.Contains(doc))
                {
                    counts.PositiveOrQuery++;
                    continue;
                }
                switch (MarginOf(options, hits[r][rank].Score, weakestPositive))
                {
                    case Margin.Relative: counts.Relative++; break;
                    case Margin.Absolute: counts.Absolute++; break;
                    default: kept.Add(doc); break;
                }
            }

            var random = DataRandom.For(options.Seed, DataRandomPurpose.HardNegatives, r);
            var chosen = Sample(kept, options.Negatives, ref random);
            int missing = options.Negatives - chosen.Count;
            if (missing > 0)
            {
                // Ranks before the range are skipped on purpose (likely false negatives): padding skips them too.
                var taken = chosen.Concat(hits[r].Take(options.RangeStart).Select(h => h.DocIndex)).ToHashSet();
                bool Eligible(int doc) => !forbidden.Contains(doc) && !taken.Contains(doc)
                    && MarginOf(options, encodedQueries.DenseDot(r, encodedPassages, doc), weakestPositive) == Margin.None;
                var padding = Pad(pool.Count, missing, Eligible, ref random);
                chosen.AddRange(padding);
                counts.RowsPadded++;
                counts.Padding += padding.Count;
                if (padding.Count < missing && chosen.Count > 0) counts.RowsShort++;
            }
            if (chosen.Count == 0)
            {
                empty.Add(r);
                if (options.OnEmpty == EmptyNegativesPolicy.Fill)
                {
                    // Nothing survived the range, the filters and the padding: a row without negatives cannot train, so
                    // random texts that the filters may reject are the lesser evil; the log says how many.
                    chosen = Pad(pool.Count, options.Negatives, doc => !forbidden.Contains(doc), ref random);
                    if (chosen.Count > 0) counts.RowsFilled++;
                    counts.Fill += chosen.Count;
                }
                if (chosen.Count == 0 && options.OnEmpty != EmptyNegativesPolicy.Keep) dropped.Add(r);
            }
            negatives[r] = chosen.Select(doc => pool[doc]).ToArray();
        }
        var summary = new MiningSummary(rows.Count, pool.Count, counts.Candidates, counts.PositiveOrQuery, counts.Relative, counts.Absolute,
            counts.RowsPadded, counts.Padding, counts.RowsShort, empty.Count, counts.RowsFilled, counts.Fill, dropped.Count);
        return new MiningResult(negatives, empty, dropped, summary);
    }

    /// <summary>
    /// The row's JSON with <c>neg</c> replaced by <paramref name="negatives"/>. Teacher scores no longer match the
    /// negatives, and <c>pos_scores</c> without <c>neg_scores</c> is not a valid row, so both are removed.
    /// </summary>
    /// <returns>The new object and whether it had scores that were removed.</returns>
    public static (JsonObject Json, bool RemovedScores) Rewrite(TrainingRowRecord row, IEnumerable<string> negatives)
    {
        var json = (JsonObject)row.Json.DeepClone();
        json["neg"] = TrainingRowFile.StringArray(negatives);
        bool removed = json.Remove("neg_scores") | json.Remove("pos_scores");
        return (json, removed);
    }

    enum Margin { None, Relative, Absolute }

    /// <summary>Dense scores of non-finite encodings would mine at random: mining stops, naming the text.</summary>
    static M3TrainException NonFinite(string text) =>
        new(FiniteValues.Problem(text, "dense embedding is NaN or infinite, so nothing can be mined", "mine"));

    static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";

    /// <summary>Which score filter, if any, rejects a candidate scoring <paramref name="score"/> against a positive scoring <paramref name="positive"/>.</summary>
    static Margin MarginOf(MiningOptions options, double score, double positive) =>
        options.RelativeMargin is { } relative && score > positive * (1 - relative) ? Margin.Relative
        : options.AbsoluteMargin is { } absolute && score > positive - absolute ? Margin.Absolute
        : Margin.None;

    /// <summary><paramref name="count"/> of <paramref name="items"/> without replacement (all if fewer), in their original order.</summary>
    static List<int> Sample(List<int> items, int count, ref DataRandom random)
    {
        if (items.Count <= count) return [.. items];
        int[] positions = Enumerable.Range(0, items.Count).ToArray();
        // Partial Fisher-Yates: the first `count` positions become a uniform sample.
        for (int i = 0; i < count; i++)
        {
            int j = i + random.NextInt(positions.Length - i);
            (positions[i], positions[j]) = (positions[j], positions[i]);
        }
        return positions[..count].Order().Select(p => items[p]).ToList();
    }

    /// <summary>
    /// Up to <paramref name="count"/> eligible pool indices drawn at random: by rejection while that is cheap (large
    /// pools), then through a shuffled pass over the whole pool (small or nearly exhausted pools).
    /// </summary>
    static List<int> Pad(int poolSize, int count, Func<int, bool> eligible, ref DataRandom random)
    {
        var result = new List<int>();
        var seen = new HashSet<int>();
        for (int attempt = 0; attempt < 16 * count && result.Count < count; attempt++)
        {
            int doc = random.NextInt(poolSize);
            if (seen.Add(doc) && eligible(doc)) result.Add(doc);
        }
        if (result.Count < count)
        {
            int[] order = Enumerable.Range(0, poolSize).ToArray();
            random.Shuffle(order.AsSpan());
            foreach (int doc in order)
            {
                if (result.Count == count) break;
                if (seen.Add(doc) && eligible(doc)) result.Add(doc);
            }
        }
        return result;
    }

    static List<string> Distinct(IEnumerable<string> texts)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        return texts.Where(seen.Add).ToList();
    }

    sealed class Counts
    {
        public long Candidates, PositiveOrQuery, Relative, Absolute, Padding, Fill;
        public int RowsPadded, RowsShort, RowsFilled;
    }
}
