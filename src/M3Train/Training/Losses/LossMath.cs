using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>Precision and masking rules shared by the losses.</summary>
internal static class LossMath
{
    /// <summary>Softmax and log-sum-exp stay in fp32 (TORCHSHARP.md: no autocast); fp32 and fp64 pass through.</summary>
    public static Tensor Upcast(Tensor scores) =>
        scores.dtype is ScalarType.Float16 or ScalarType.BFloat16 ? scores.to_type(ScalarType.Float32) : scores;

    /// <summary>The dtype's most negative finite value, as the reference uses for masked columns.</summary>
    public static double Min(ScalarType dtype) => torch.finfo(dtype).min;

    /// <summary>
    /// Excluded columns get the dtype's minimum (finite, so 0·log p stays 0 where -inf would give NaN);
    /// they then carry no probability and no gradient.
    /// </summary>
    public static Tensor Exclude(Tensor scores, Tensor? exclude)
    {
        if (exclude is null) return scores;
        CheckMask(scores, exclude);
        return scores.masked_fill(exclude, Min(scores.dtype));
    }

    public static void CheckMask(Tensor scores, Tensor exclude)
    {
        if (exclude.dtype != ScalarType.Bool || !exclude.shape.SequenceEqual(scores.shape))
            throw new ArgumentException(
                $"exclude mask must be bool [{string.Join(", ", scores.shape)}], got {exclude.dtype} [{string.Join(", ", exclude.shape)}]");
    }
}
