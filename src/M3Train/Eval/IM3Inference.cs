using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;

namespace M3Train.Eval;

/// <summary>
/// What evaluation, mining, teacher scoring and inspection need from a model: FlagEmbedding-style batch encoding
/// and <c>compute_score</c> (no gradients, eval mode, texts batched longest first). The verbs use only this, so the
/// encoder behind it is chosen in one place (<see cref="TorchM3Inference"/>, over <see cref="M3TextInference"/>).
/// </summary>
public interface IM3Inference
{
    XlmrTokenizer Tokenizer { get; }

    /// <summary>The most tokens (with &lt;s&gt; and &lt;/s&gt;) the model's position table takes; longer limits are capped to it.</summary>
    int MaxTokens { get; }

    /// <summary>
    /// Runs the model over <paramref name="texts"/> (truncated to <paramref name="maxLength"/> tokens) in batches and
    /// hands each batch's representations, with the indices of its texts, to <paramref name="visit"/>; the
    /// representations are disposed after the call returns.
    /// </summary>
    void ForEachBatch(IReadOnlyList<string> texts, int maxLength, Action<IReadOnlyList<int>, M3Representations> visit, ProgressTask? progress = null);

    /// <summary>The requested <paramref name="parts"/> of every text, in input order.</summary>
    TextEncodings Encode(IReadOnlyList<string> texts, int maxLength, EncodingParts parts, ProgressTask? progress = null);

    /// <summary><c>compute_score</c> of (query, passage) pairs, in input order: what <c>m3train score</c> prints.</summary>
    IReadOnlyList<M3PairScores> ScorePairs(IReadOnlyList<(string Query, string Passage)> pairs, M3ScoreWeights weights,
        int maxQueryLength, int maxPassageLength, ProgressTask? progress = null);
}
