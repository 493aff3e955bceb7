using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// Picks a random share of candidate positions along the last dimension, as tensor operations on the
/// candidates' device (no host loop, no sync), from an explicit generator so a step's masks are a function of its seed.
/// </summary>
public static class RandomPositions
{
    /// <summary>
    /// candidates [..., N] bool → selected [..., N] bool, a subset of the candidates: per row, by
    /// <paramref name="sampling"/> (<see cref="MaskSampling"/>), a share <paramref name="ratio"/> of the row's candidates.
    /// </summary>
    public static Tensor Select(Tensor candidates, double ratio, MaskSampling sampling, Generator generator)
    {
        using var scope = NewDisposeScope();
        var keys = rand(candidates.shape, dtype: ScalarType.Float32, device: candidates.device, generator: generator); // [..., N]
        if (sampling == MaskSampling.Bernoulli)
            return (keys.lt(ratio) & candidates).MoveToOuterDisposeScope();

        // Candidates sort first (their keys are < 1, the others get 2); the first k of that order are selected.
        var n = candidates.sum(-1, keepdim: true, type: ScalarType.Float32);                        // [..., 1]
        var k = ratio > 0 ? (n * ratio).round().maximum(n.clamp_max(1)) : zeros_like(n);             // [..., 1]
        var order = keys.masked_fill(candidates.logical_not(), 2.0).argsort(-1);                     // [..., N]
        long size = candidates.shape[^1];
        var rank = arange(size, dtype: ScalarType.Float32, device: candidates.device);               // [N]
        var firstK = rank.lt(k);                                                                     // [..., N]
        var selected = zeros_like(candidates).scatter(-1, order, firstK);                            // [..., N]
        return selected.MoveToOuterDisposeScope();
    }
}
