using System.Text.RegularExpressions;
using M3Train.Eval;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;

namespace M3Train.Tests.Eval;

/// <summary>
/// A test encoder with scores one can reason about: the dense vector of a text is its normalized word-count vector
/// (lower-cased words, punctuation ignored, hashed into 256 buckets), so two texts with the same words score
/// exactly alike. Only <see cref="Encode"/> of the dense part is provided; the miner needs no more.
/// </summary>
internal sealed partial class BagOfWordsInference : IM3Inference
{
    const int Dim = 256;

    public XlmrTokenizer Tokenizer => throw new NotSupportedException("the bag-of-words test encoder has no tokenizer");

    public int MaxTokens => 512;

    public void ForEachBatch(IReadOnlyList<string> texts, int maxLength, Action<IReadOnlyList<int>, M3Representations> visit, ProgressTask? progress = null) =>
        throw new NotSupportedException("the bag-of-words test encoder has no model representations");

    public IReadOnlyList<M3PairScores> ScorePairs(IReadOnlyList<(string Query, string Passage)> pairs, M3ScoreWeights weights,
        int maxQueryLength, int maxPassageLength, ProgressTask? progress = null) =>
        throw new NotSupportedException("the bag-of-words test encoder has no pair scores");

    public TextEncodings Encode(IReadOnlyList<string> texts, int maxLength, EncodingParts parts, ProgressTask? progress = null)
    {
        if (parts != EncodingParts.Dense) throw new NotSupportedException("the bag-of-words test encoder has dense vectors only");
        var dense = new float[texts.Count * Dim];
        for (int i = 0; i < texts.Count; i++)
        {
            var vector = dense.AsSpan(i * Dim, Dim);
            foreach (Match word in Word().Matches(texts[i].ToLowerInvariant()))
                vector[(int)((uint)StableHash(word.Value) % Dim)] += 1;
            float norm = MathF.Sqrt(vector.ToArray().Sum(v => v * v));
            if (norm > 0)
                for (int j = 0; j < Dim; j++) vector[j] /= norm;
        }
        return new TextEncodings(texts.Count, EncodingParts.Dense, Dim, dense, [], 0, [], []);
    }

    static int StableHash(string word) => word.Aggregate(17, (h, c) => unchecked(h * 31 + c));

    [GeneratedRegex(@"\w+")]
    private static partial Regex Word();
}
