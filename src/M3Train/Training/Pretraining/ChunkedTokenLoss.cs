using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// Summed cross-entropy of a language-model head's predictions for N rows, with the [N, V] logits made a chunk of
/// rows at a time. Each chunk's forward and backward run together (into the head's parameters and into the rows'
/// gradient), so peak memory holds one chunk's logits and their gradient instead of all N × V of them: at 8192 tokens
/// and XLM-R's 250,002 pieces, one text's decoder logits alone are 8.2 GB in fp32. The caller then back-propagates
/// <c>RowGradient</c> through whatever made the rows (the encoder, the decoder), once. The result is the single
/// pass's: the loss and the gradients are sums over rows, whichever rows go together.
/// </summary>
public static class ChunkedTokenLoss
{
    /// <param name="logits">The head: rows [n, D] → logits [n, V].</param>
    /// <param name="rows">[N, D], the hidden states to predict from (part of the caller's graph).</param>
    /// <param name="labels">[N] int64 targets.</param>
    /// <param name="weight">0-d weight of this loss in the objective: each chunk's backward is of weight × its loss.</param>
    /// <param name="chunk">Rows per chunk; 0, or N or more, is one chunk.</param>
    /// <returns>
    /// The unweighted summed loss (0-d, detached), and the gradient of weight × loss with respect to
    /// <paramref name="rows"/> ([N, D]; null when <paramref name="rows"/> needs none).
    /// </returns>
    public static (Tensor Loss, Tensor? RowGradient) Run(Func<Tensor, Tensor> logits, Tensor rows, Tensor labels, Tensor weight, int chunk)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunk);
        long n = rows.shape[0];
        long step = chunk == 0 ? Math.Max(n, 1) : chunk;
        using var leaf = rows.detach().requires_grad_(rows.requires_grad);
        var total = zeros([], ScalarType.Float32, rows.device);
        // At least one chunk, empty or not: with no rows the head still gets its (zero) gradients, as in one pass, so
        // the optimizer treats it the same either way.
        for (long start = 0; start < n || start == 0; start += step)
        {
            using var scope = NewDisposeScope();
            var range = TensorIndex.Slice(start, Math.Min(start + step, n));
            var loss = nn.functional.cross_entropy(logits(leaf[range]), labels[range], reduction: nn.Reduction.Sum);
            if (loss.requires_grad) (loss * weight).backward();
            total.add_(loss.detach().to(ScalarType.Float32));
        }
        if (!rows.requires_grad) return (total, null);
        // Every row went through a chunk's backward (an empty one too), so the leaf has its gradient; the handle
        // outlives the leaf it came from.
        return (total, leaf.grad ?? throw new InvalidOperationException("the rows received no gradient"));
    }
}
