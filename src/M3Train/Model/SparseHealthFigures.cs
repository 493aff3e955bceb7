namespace M3Train.Model;

/// <summary>
/// Health figures of the lexical (sparse) and multi-vector heads over a set of texts, from <see cref="SparseHealth"/>.
/// Held as sums and counts so figures of several batches add up (<see cref="op_Addition"/>); the means are derived.
/// </summary>
/// <param name="Texts">Texts measured.</param>
/// <param name="Tokens">Tokens of those texts (attention mask 1, &lt;s&gt; and &lt;/s&gt; included).</param>
/// <param name="ActiveTokens">Entries of their lexical vectors: per text, the distinct token ids whose (max) weight is &gt; 0.</param>
/// <param name="AllZeroTexts">Texts whose lexical vector is all zero (no active token).</param>
/// <param name="ActiveWeightSum">Sum of the active entries' weights.</param>
/// <param name="ColbertTexts">Texts whose multi-vectors were measured (0 when none were).</param>
/// <param name="ColbertSelfSimilaritySum">Sum over those texts of the mean pairwise cosine of their token vectors.</param>
public sealed record SparseHealthFigures(
    long Texts,
    long Tokens,
    long ActiveTokens,
    long AllZeroTexts,
    double ActiveWeightSum,
    long ColbertTexts,
    double ColbertSelfSimilaritySum)
{
    public static SparseHealthFigures Empty { get; } = new(0, 0, 0, 0, 0, 0, 0);

    /// <summary>Mean non-padding tokens per text.</summary>
    public double MeanTokens => Texts == 0 ? 0 : (double)Tokens / Texts;

    /// <summary>Mean active (non-zero) lexical weights per text: the size of a text's sparse vector.</summary>
    public double MeanActiveTokens => Texts == 0 ? 0 : (double)ActiveTokens / Texts;

    /// <summary>Share of texts whose sparse vector is all zero (0..1); its sustained rise is the known unified-fine-tuning failure.</summary>
    public double AllZeroShare => Texts == 0 ? 0 : (double)AllZeroTexts / Texts;

    /// <summary>Mean weight of an active lexical entry.</summary>
    public double MeanActiveWeight => ActiveTokens == 0 ? 0 : ActiveWeightSum / ActiveTokens;

    /// <summary>
    /// Mean over texts of the mean pairwise cosine between a text's multi-vectors (self-pairs included), which equals
    /// ‖mean of its unit vectors‖²: 1 when every token vector is the same (the head collapsed to one vector), lower
    /// when tokens are told apart. NaN when no multi-vectors were measured.
    /// </summary>
    public double ColbertSelfSimilarity => ColbertTexts == 0 ? double.NaN : ColbertSelfSimilaritySum / ColbertTexts;

    public static SparseHealthFigures operator +(SparseHealthFigures a, SparseHealthFigures b) => new(
        a.Texts + b.Texts, a.Tokens + b.Tokens, a.ActiveTokens + b.ActiveTokens, a.AllZeroTexts + b.AllZeroTexts,
        a.ActiveWeightSum + b.ActiveWeightSum, a.ColbertTexts + b.ColbertTexts, a.ColbertSelfSimilaritySum + b.ColbertSelfSimilaritySum);
}
