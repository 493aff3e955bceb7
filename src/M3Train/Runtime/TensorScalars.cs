using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Runtime;

/// <summary>
/// Scalar arguments that stay alive through the native call. A number passed where TorchSharp takes a
/// <see cref="Scalar"/> becomes a temporary native object; in an optimized build its lifetime can end as soon as
/// its handle is read, and a garbage collection during the libtorch call then frees it under libtorch's feet
/// (seen as "toDouble ... Expected false to be true" from masked_fill). Holding the Scalar until the call returns
/// prevents that.
/// </summary>
public static class TensorScalars
{
    /// <summary><c>t.masked_fill(mask, value)</c> with the scalar kept alive.</summary>
    public static Tensor MaskedFill(this Tensor t, Tensor mask, double value)
    {
        using var scalar = value.ToScalar();
        return t.masked_fill(mask, scalar);
    }
}
