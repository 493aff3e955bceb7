using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// The dense representation: the CLS state, L2-normalized. H [B, L, D] → [B, D] fp32.
/// s_dense(q, p) = ⟨e_q, e_p⟩ (<see cref="M3Scores.Dense"/>).
/// </summary>
public static class DenseHead
{
    public static Tensor Forward(Tensor lastHidden, bool normalize = true)
    {
        using var scope = NewDisposeScope();
        var cls = lastHidden[.., 0].to(ScalarType.Float32); // [B, D]
        var result = normalize ? nn.functional.normalize(cls, p: 2.0, dim: -1) : cls;
        return result.MoveToOuterDisposeScope();
    }
}
