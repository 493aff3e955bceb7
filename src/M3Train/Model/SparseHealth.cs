using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Sparse and multi-vector health of a batch (issue 11): how many active lexical weights a text has, how many texts
/// have an all-zero sparse vector (the common failure after unified fine-tuning), and whether the multi-vectors of a
/// text have collapsed onto one direction. Computed on the device with one read-back of a few numbers, so a trainer
/// can log it at every logged step. Shapes: B texts, L tokens, D' multi-vector size.
/// </summary>
/// <remarks>
/// An active entry is a distinct token id whose max weight in the text is &gt; 0 (the lexical vector FlagEmbedding's
/// inference returns; <see cref="SparseHead"/> already gives special ids weight 0). Padding positions (mask 0) never
/// count. Gradients are not needed and not kept: inputs are detached.
/// </remarks>
public static class SparseHealth
{
    /// <summary>
    /// Lexical and multi-vector figures of a batch of representations encoded with both parts (the attention mask is
    /// &lt;s&gt; plus <see cref="M3Representations.ColbertMask"/>).
    /// </summary>
    public static SparseHealthFigures Measure(M3Representations reps)
    {
        if (reps is not { InputIds: { } ids, TokenWeights: { } weights, ColbertVectors: { } vectors, ColbertMask: { } colbertMask })
            throw new ArgumentException("health needs the lexical and multi-vector parts of the representations");
        using var scope = NewDisposeScope();
        var mask = cat([ones_like(colbertMask[.., ..1]), colbertMask], 1); // [B, L]
        var lexical = Sparse(ids, weights, mask);
        var (texts, sum) = Colbert(vectors, colbertMask);
        return lexical with { ColbertTexts = texts, ColbertSelfSimilaritySum = sum };
    }

    /// <summary>Lexical figures: input ids [B, L], token weights [B, L], attention mask [B, L] (1 = token).</summary>
    public static SparseHealthFigures Sparse(Tensor inputIds, Tensor tokenWeights, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weights = tokenWeights.detach().to_type(ScalarType.Float32) * attentionMask.to_type(ScalarType.Float32); // [B, L]
        var (_, pooled) = M3Scores.MaxPerId(inputIds, weights); // [B, L]: each distinct id's max at one position, 0 elsewhere
        var active = pooled.gt(0);                               // [B, L]
        var perText = active.sum(1);                             // [B]
        var figures = stack([
            attentionMask.sum().to_type(ScalarType.Float64),
            perText.sum().to_type(ScalarType.Float64),
            perText.eq(0).sum().to_type(ScalarType.Float64),
            (pooled * active).sum().to_type(ScalarType.Float64),
        ]).cpu();
        double[] values = figures.data<double>().ToArray();
        return new SparseHealthFigures(inputIds.shape[0], (long)values[0], (long)values[1], (long)values[2], values[3], 0, 0);
    }

    /// <summary>
    /// Multi-vector figure: vectors [B, L-1, D'] (unit rows, padding rows zero), mask [B, L-1] → (texts with at least
    /// one vector, sum over them of ‖mean of their vectors‖², the mean pairwise cosine with self-pairs).
    /// </summary>
    public static (long Texts, double SelfSimilaritySum) Colbert(Tensor colbertVectors, Tensor colbertMask)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var mask = colbertMask.to_type(ScalarType.Float32);                                      // [B, L-1]
        var counts = mask.sum(1);                                                                // [B]
        var sums = (colbertVectors.detach().to_type(ScalarType.Float32) * mask.unsqueeze(-1)).sum(1); // [B, D']
        var present = counts.gt(0);
        var means = sums / counts.clamp_min(1).unsqueeze(-1);                                   // [B, D']
        var similarity = (means * means).sum(1) * present;                                       // [B]
        var figures = stack([present.sum().to_type(ScalarType.Float64), similarity.sum().to_type(ScalarType.Float64)]).cpu();
        double[] values = figures.data<double>().ToArray();
        return ((long)values[0], values[1]);
    }
}
