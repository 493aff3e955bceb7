using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Runtime;

/// <summary>
/// Scalar arguments that stay alive through the native call. A number passed where TorchSharp takes a
/// <see cref="Scalar"/> becomes a temporary native object; in an optimized build its lifetime can end as soon as
/// its handle is read, and a garbage collection during the libtorch call then frees it under libtorch's feet
/// (seen as "toDouble ... Expected false to be true" from masked_fill). Holding the Scalar until the call returns
/// prevents that. The general fix is the build's patch of TorchSharp.dll (build/TorchSharpLifetimePatcher.cs), which
/// covers every call, including the Scalars TorchSharp makes itself (<c>t * 2.0</c>, <c>a + b</c>); this helper
/// keeps masked_fill safe where a program loads TorchSharp.dll unpatched.
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
