using System.Globalization;
using System.Text;

namespace M3Train.Data;

/// <summary>
/// Builds a query's group as the reference does (docs/METHOD.md, "Data"): one random positive and G-1 negatives
/// sampled without replacement (from the list repeated enough times when it is shorter), teacher scores kept
/// aligned, with probability <c>shuffle_ratio</c> the positive (when longer than 100 characters) cut into 3 chunks
/// that are shuffled, and the instructions prepended only when there is one: the row's <c>prompt</c> or
/// <c>data.query_instruction</c> before the query, and before the passages either <c>data.passage_instruction</c> or,
/// for symmetric rows (<see cref="TrainGroupRules.SymmetricTexts"/>), the query's own.
/// </summary>
public static class TrainGroupSampler
{
    const int ShuffleMinLength = 100;

    /// <summary>The query as it is encoded: with the row's prompt or the configured instruction when there is one.</summary>
    public static string QueryText(TrainRow row, DataConfig config)
    {
        string query = row.Query ?? throw new ArgumentException("a text row has no query", nameof(row));
        return Prefixed(QueryInstruction(row, config), config.QueryInstructionFormat, query);
    }

    /// <summary>A passage of <paramref name="row"/> as it is encoded: with the query's instruction for symmetric rows, else with the passage instruction.</summary>
    public static string PassageText(TrainRow row, string passage, DataConfig config) =>
        row.Type is { } type && TrainGroupRules.SymmetricTexts.Contains(type)
            ? Prefixed(QueryInstruction(row, config), config.QueryInstructionFormat, passage)
            : Prefixed(config.PassageInstruction, config.PassageInstructionFormat, passage);

    /// <summary>The group of <paramref name="row"/> with <paramref name="groupSize"/> passages, drawing from <paramref name="random"/>.</summary>
    public static TrainGroup Sample(TrainRow row, int groupSize, bool withScores, DataConfig config, ref DataRandom random)
    {
        int positive = random.NextInt(row.Positives.Length);
        string positiveText = config.ShuffleRatio > 0 ? MaybeShuffleChunks(row.Positives[positive], config.ShuffleRatio, ref random) : row.Positives[positive];
        int[] negatives = SampleNegatives(row.Negatives.Length, groupSize - 1, ref random);
        var passages = new string[groupSize];
        passages[0] = PassageText(row, positiveText, config);
        for (int i = 0; i < negatives.Length; i++) passages[i + 1] = PassageText(row, row.Negatives[negatives[i]], config);
        float[]? scores = null;
        if (withScores)
        {
            scores = new float[groupSize];
            scores[0] = row.PositiveScores![positive];
            for (int i = 0; i < negatives.Length; i++) scores[i + 1] = row.NegativeScores![negatives[i]];
        }
        return new TrainGroup(QueryText(row, config), passages, scores);
    }

    static string? QueryInstruction(TrainRow row, DataConfig config) =>
        config.UseRowPrompt && row.Prompt is not null ? row.Prompt : config.QueryInstruction;

    static string Prefixed(string? instruction, string format, string text) =>
        instruction is null ? text : string.Format(CultureInfo.InvariantCulture, format, instruction, text);

    /// <summary><paramref name="count"/> indices into a list of <paramref name="available"/>, distinct unless the list has to be repeated.</summary>
    static int[] SampleNegatives(int available, int count, ref DataRandom random)
    {
        if (count <= 0) return [];
        if (available == 0) throw new InvalidOperationException("a row without negatives cannot fill a group larger than 1");
        int repeats = (count + available - 1) / available;
        var pool = new int[available * repeats];
        for (int i = 0; i < pool.Length; i++) pool[i] = i % available;
        for (int i = 0; i < count; i++)
        {
            int j = i + random.NextInt(pool.Length - i);
            (pool[i], pool[j]) = (pool[j], pool[i]);
        }
        return pool[..count];
    }

    static string MaybeShuffleChunks(string text, double ratio, ref DataRandom random)
    {
        // Lengths and cuts count code points, as the reference's Python strings do, so no surrogate pair is split.
        int length = text.EnumerateRunes().Count();
        if (length <= ShuffleMinLength || random.NextDouble() >= ratio) return text;
        int chunkSize = length / 3 + 1;
        var chunks = new List<string>(3);
        var chunk = new StringBuilder();
        int inChunk = 0;
        foreach (Rune rune in text.EnumerateRunes())
        {
            chunk.Append(rune.ToString());
            if (++inChunk == chunkSize)
            {
                chunks.Add(chunk.ToString());
                chunk.Clear();
                inChunk = 0;
            }
        }
        if (chunk.Length > 0) chunks.Add(chunk.ToString());
        string[] shuffled = [.. chunks];
        random.Shuffle(shuffled.AsSpan());
        return string.Join(' ', shuffled);
    }
}
