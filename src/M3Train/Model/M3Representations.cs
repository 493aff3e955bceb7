using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// The three M3 representations of a batch (B texts, L tokens, D hidden, D' multi-vector size), all fp32:
/// <see cref="Dense"/> [B, D]; <see cref="TokenWeights"/> [B, L] with the <see cref="InputIds"/> [B, L] they
/// belong to (the lexical representation: max weight per id, taken when scoring); <see cref="ColbertVectors"/>
/// [B, L-1, D'] (tokens after CLS, padding rows zero) with <see cref="ColbertMask"/> [B, L-1] (1 = token).
/// Owns its tensors.
/// </summary>
public sealed record M3Representations(
    Tensor Dense,
    Tensor TokenWeights,
    Tensor InputIds,
    Tensor ColbertVectors,
    Tensor ColbertMask) : IDisposable
{
    /// <summary>Moves every tensor out of the current dispose scope, for returning from a scoped method.</summary>
    public M3Representations MoveToOuterDisposeScope()
    {
        foreach (var t in Tensors) t.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>The same representations without autograd history (e.g. GradCache's cached first pass).</summary>
    public M3Representations Detach() =>
        new(Dense.detach(), TokenWeights.detach(), InputIds.detach(), ColbertVectors.detach(), ColbertMask.detach());

    IEnumerable<Tensor> Tensors => [Dense, TokenWeights, InputIds, ColbertVectors, ColbertMask];

    public void Dispose()
    {
        foreach (var t in Tensors) t.Dispose();
    }
}
