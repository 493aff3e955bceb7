using System.Diagnostics;
using System.Text.Json;

namespace M3Train.Text;

/// <summary>
/// Tokenizer throughput: tokens per second per core on a few MB of text, the figure behind
/// <c>m3train bench --mode tokenize</c>. Goal: at least 1.5M tokens/s per core (SentencePiece's own CLI
/// does about 2.4M with XLM-R's model).
/// </summary>
public static class TokenizerBenchmark
{
    /// <summary>
    /// Texts from the given files, repeated until they hold <paramref name="targetChars"/> characters:
    /// every string field of every JSON line of a <c>.jsonl</c> file (queries, passages, texts), every
    /// non-empty line of any other file. Mixing the sample data with the multilingual
    /// <c>spm_corpus.txt</c> gives mixed-script text.
    /// </summary>
    public static IReadOnlyList<string> BuildCorpus(IEnumerable<string> files, long targetChars = 4_000_000)
    {
        var distinct = new List<string>();
        foreach (string file in files)
        {
            if (file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            {
                foreach (string line in File.ReadLines(file))
                {
                    if (string.IsNullOrWhiteSpace(line)) continue;
                    using var doc = JsonDocument.Parse(line);
                    CollectStrings(doc.RootElement, distinct);
                }
            }
            else
            {
                distinct.AddRange(File.ReadLines(file).Where(l => l.Length > 0));
            }
        }
        if (distinct.Count == 0)
            throw new M3TrainException($"no text in {string.Join(", ", files)} to benchmark the tokenizer on");
        var corpus = new List<string>();
        long chars = 0;
        for (int i = 0; chars < targetChars; i = (i + 1) % distinct.Count)
        {
            corpus.Add(distinct[i]);
            chars += distinct[i].Length;
        }
        return corpus;
    }

    /// <summary>
    /// Encodes <paramref name="texts"/> once to warm up, then <paramref name="rounds"/> times timed, on
    /// <paramref name="threads"/> threads (each a contiguous share of the texts); returns the fastest round.
    /// </summary>
    public static TokenizerBenchmarkResult Run(XlmrTokenizer tokenizer, IReadOnlyList<string> texts, int threads = 1, int rounds = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        long chars = texts.Sum(t => (long)t.Length);
        long tokens = EncodeAll(tokenizer, texts, threads);
        double best = double.MaxValue;
        for (int round = 0; round < rounds; round++)
        {
            var watch = Stopwatch.StartNew();
            EncodeAll(tokenizer, texts, threads);
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return new TokenizerBenchmarkResult(texts.Count, chars, tokens, best, threads);
    }

    static long EncodeAll(XlmrTokenizer tokenizer, IReadOnlyList<string> texts, int threads)
    {
        var counts = new long[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, worker =>
        {
            int from = (int)((long)texts.Count * worker / threads), to = (int)((long)texts.Count * (worker + 1) / threads);
            long n = 0;
            for (int i = from; i < to; i++) n += tokenizer.Encode(texts[i]).Length;
            counts[worker] = n;
        });
        return counts.Sum();
    }

    static void CollectStrings(JsonElement element, List<string> into)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String when element.GetString() is { Length: > 0 } s:
                into.Add(s);
                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray()) CollectStrings(item, into);
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject()) CollectStrings(property.Value, into);
                break;
        }
    }
}
