using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// The M3 representations of a batch (B texts, L tokens, D hidden, D' multi-vector size), all fp32:
/// <see cref="Dense"/> [B, D]; <see cref="TokenWeights"/> [B, L] with the <see cref="InputIds"/> [B, L] they
/// belong to (the lexical representation: max weight per id, taken when scoring); <see cref="ColbertVectors"/>
/// [B, L-1, D'] (tokens after CLS, padding rows zero) with <see cref="ColbertMask"/> [B, L-1] (1 = token).
/// A part the encoding left out (<see cref="EncodingParts"/>) is null, both of its tensors. Owns its tensors.
/// </summary>
public sealed record M3Representations(
    Tensor Dense,
    Tensor? TokenWeights,
    Tensor? InputIds,
    Tensor? ColbertVectors,
    Tensor? ColbertMask) : IDisposable
{
    /// <summary>L, the padded length of the texts: from the ids, or from the multi-vector mask (which leaves out CLS); 0 with neither.</summary>
    public long Tokens => InputIds?.shape[1] ?? (ColbertMask is { } mask ? mask.shape[1] + 1 : 0);

    /// <summary>Which parts are here.</summary>
    public EncodingParts Parts =>
        EncodingParts.Dense | (TokenWeights is null ? 0 : EncodingParts.Lexical) | (ColbertVectors is null ? 0 : EncodingParts.Colbert);

    /// <summary>Moves every tensor out of the current dispose scope, for returning from a scoped method.</summary>
    public M3Representations MoveToOuterDisposeScope()
    {
        foreach (var t in Tensors) t.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>
    /// The same values cut from their autograd history, the floating-point ones requiring a gradient: the leaves
    /// a loss over cached representations is differentiated with respect to (GradCache's second pass).
    /// </summary>
    public M3Representations AsGradientLeaves()
    {
        static Tensor? Leaf(Tensor? t) => t?.detach().requires_grad_(t.is_floating_point());
        return new(Leaf(Dense)!, Leaf(TokenWeights), Leaf(InputIds), Leaf(ColbertVectors), Leaf(ColbertMask));
    }

    /// <summary>
    /// The pieces of one batch, in order, as one: concatenated along the batch. Pieces padded to different lengths
    /// (sub-batches padded on their own) are right-padded to the longest with what padding means for each tensor
    /// (weight 0, id &lt;pad&gt;, zero vector, mask 0), which changes no score.
    /// </summary>
    public static M3Representations Concat(IReadOnlyList<M3Representations> pieces)
    {
        if (pieces.Count == 1) return pieces[0];
        var parts = pieces[0].Parts;
        if (pieces.Any(p => p.Parts != parts)) throw new ArgumentException("the pieces hold different parts");
        long length = pieces.Max(p => p.Tokens);
        Tensor? Cat(Func<M3Representations, Tensor?> part, long tokens, double padValue)
        {
            if (part(pieces[0]) is null) return null;
            return cat(pieces.Select(p =>
            {
                var t = part(p)!;
                long missing = tokens - t.shape[1];
                if (missing == 0) return t;
                long[] pad = t.dim() == 3 ? [0, 0, 0, missing] : [0, missing];
                return nn.functional.pad(t, pad, value: padValue);
            }).ToList(), 0);
        }
        return new(
            cat(pieces.Select(p => p.Dense).ToList(), 0),          // [N, D]
            Cat(p => p.TokenWeights, length, 0),                    // [N, L]
            Cat(p => p.InputIds, length, XlmrTokenizer.PadId),      // [N, L]
            Cat(p => p.ColbertVectors, length - 1, 0),              // [N, L-1, D']
            Cat(p => p.ColbertMask, length - 1, 0));                // [N, L-1]
    }

    /// <summary>Rows <paramref name="index"/> ([N] int64, on their device) of every part, as new tensors.</summary>
    public M3Representations Rows(Tensor index)
    {
        Tensor? Pick(Tensor? t) => t?.index_select(0, index);
        return new(Pick(Dense)!, Pick(TokenWeights), Pick(InputIds), Pick(ColbertVectors), Pick(ColbertMask));
    }

    IEnumerable<Tensor> Tensors => new[] { Dense, TokenWeights, InputIds, ColbertVectors, ColbertMask }.OfType<Tensor>();

    public void Dispose()
    {
        foreach (var t in Tensors) t.Dispose();
    }
}
