using M3Train.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// GradCache-style two-pass step (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under
/// Memory Limited Setup"), so memory is bounded by one piece of the batch while the loss sees all of it:
/// 1. encode every piece without a graph; 2. compute the loss over the cached representations and its gradient
/// with respect to them; 3. re-encode each piece with a graph and backpropagate its slice of that gradient into the
/// parameters. The parameter gradients equal a single pass over the whole batch.
/// </summary>
public static class GradCache
{
    /// <summary>
    /// Runs the three passes; parameter gradients are accumulated (.grad +=).
    /// </summary>
    /// <param name="pieces">Encodes piece i. Called twice, without and with a graph, it must draw the same dropout
    /// masks both times (<see cref="M3Model.Encode"/> seeds its dropout from the seed it is given).</param>
    /// <param name="loss">The loss over the cached representations of every piece (in piece order; their tensors are
    /// leaves that require a gradient) and what the caller wants back, e.g. the loss's parts.</param>
    /// <param name="lossComputed">Called between pass 2's loss and its gradient (the end of the forward work, for phase timing).</param>
    /// <param name="finalBackward">Called before the last piece's second encoding, whose backward completes the parameters' gradients.</param>
    public static T Step<T>(IReadOnlyList<Func<M3Representations>> pieces,
        Func<IReadOnlyList<M3Representations>, (Tensor Loss, T Result)> loss, Action? lossComputed = null, Action? finalBackward = null)
    {
        // Pass 1: representations without a graph.
        var leaves = new List<M3Representations>(pieces.Count);
        using (no_grad())
            foreach (var piece in pieces)
                leaves.Add(piece().AsGradientLeaves());

        // Pass 2: loss over the whole batch; gradients with respect to the cached representations.
        var (total, result) = loss(leaves);
        lossComputed?.Invoke();
        var differentiable = leaves.SelectMany(Outputs).Where(t => t.requires_grad).ToList();
        var grads = torch.autograd.grad([total], differentiable, allow_unused: true);
        var gradOf = new Dictionary<Tensor, Tensor?>(ReferenceEqualityComparer.Instance);
        // allow_unused gives an undefined tensor for a representation the loss does not use (e.g. a head left out).
        for (int i = 0; i < differentiable.Count; i++) gradOf[differentiable[i]] = grads[i] is { IsInvalid: false } g ? g : null;

        // Pass 3: re-encode each piece with a graph and push its slice of the gradient through the encoder.
        for (int i = 0; i < pieces.Count; i++)
        {
            using var scope = NewDisposeScope();
            if (i == pieces.Count - 1) finalBackward?.Invoke();
            var encoded = pieces[i]();
            var outputs = new List<Tensor>();
            var outputGrads = new List<Tensor>();
            foreach (var (output, leaf) in Outputs(encoded).Zip(Outputs(leaves[i])))
            {
                if (!leaf.requires_grad || gradOf[leaf] is not { } g || !output.requires_grad) continue;
                outputs.Add(output);
                outputGrads.Add(g);
            }
            if (outputs.Count > 0) torch.autograd.backward(outputs, outputGrads);
        }
        return result;
    }

    /// <summary>The floating-point representations of a piece, the same parts in the same order for an encoding and its leaves.</summary>
    static IEnumerable<Tensor> Outputs(M3Representations reps) =>
        new[] { reps.Dense, reps.TokenWeights, reps.ColbertVectors }.OfType<Tensor>();
}
