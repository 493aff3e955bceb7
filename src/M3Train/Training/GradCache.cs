using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// One piece of a batch to encode: <see cref="Encode"/> returns its representations (each with the batch on
/// dim 0); pieces of the same <see cref="Group"/> (e.g. "q", "p") are concatenated in order for the loss.
/// <see cref="Seed"/> is set before the encoding in both passes, so dropout is replayed exactly.
/// </summary>
public sealed record EncodeChunk(string Group, Func<IReadOnlyList<Tensor>> Encode, long Seed);

/// <summary>
/// GradCache-style two-pass step (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under
/// Memory Limited Setup"), so memory is bounded by one chunk while the loss sees the whole batch:
/// 1. encode every chunk without a graph; 2. compute the loss over the concatenated representations and
/// its gradient with respect to them; 3. re-encode each chunk with a graph and backpropagate its slice of
/// that gradient into the parameters. The parameter gradients equal a single pass over the whole batch.
/// </summary>
public static class GradCache
{
    /// <summary>
    /// Runs the three passes; parameter gradients are accumulated (.grad +=). Returns the loss's parts, detached.
    /// <paramref name="lossComputed"/>, when given, is called between pass 2's loss and its gradient (the end of
    /// the forward work, for phase timing).
    /// </summary>
    public static IReadOnlyDictionary<string, Tensor> Step(
        IReadOnlyList<EncodeChunk> chunks,
        Func<IReadOnlyDictionary<string, IReadOnlyList<Tensor>>, IReadOnlyDictionary<string, Tensor>> loss,
        string lossKey = "loss",
        Func<IReadOnlyList<IReadOnlyList<Tensor>>, IReadOnlyList<Tensor>>? concat = null,
        Action? lossComputed = null)
    {
        // Pass 1: representations without a graph.
        var cached = new List<IReadOnlyList<Tensor>>(chunks.Count);
        using (no_grad())
        {
            foreach (var chunk in chunks)
            {
                Reseed(chunk.Seed);
                cached.Add(chunk.Encode().Select(t => t.detach()).ToList());
            }
        }

        // Pass 2: loss over the whole batch; gradients with respect to the cached representations.
        var leaves = cached.Select(reps => reps.Select(r => r.requires_grad_(r.is_floating_point())).ToList()).ToList();
        var grouped = Group(chunks, leaves, concat ?? ConcatAlongBatch);
        var parts = loss(grouped);
        var total = parts[lossKey];
        lossComputed?.Invoke();
        var differentiable = leaves.SelectMany(l => l).Where(t => t.requires_grad).ToList();
        var grads = torch.autograd.grad([total], differentiable, allow_unused: true);
        var gradOf = new Dictionary<Tensor, Tensor?>(ReferenceEqualityComparer.Instance);
        // allow_unused gives an undefined tensor for a representation the loss does not use (e.g. a head left out).
        for (int i = 0; i < differentiable.Count; i++) gradOf[differentiable[i]] = grads[i] is { IsInvalid: false } g ? g : null;

        // Pass 3: re-encode each chunk with a graph and push its slice of the gradient through the encoder.
        for (int c = 0; c < chunks.Count; c++)
        {
            Reseed(chunks[c].Seed);
            using var scope = NewDisposeScope();
            var reps = chunks[c].Encode();
            var outputs = new List<Tensor>();
            var outputGrads = new List<Tensor>();
            for (int r = 0; r < reps.Count; r++)
            {
                var leaf = leaves[c][r];
                if (!leaf.requires_grad || gradOf[leaf] is not { } g || !reps[r].requires_grad) continue;
                outputs.Add(reps[r]);
                outputGrads.Add(g);
            }
            if (outputs.Count > 0) torch.autograd.backward(outputs, outputGrads);
        }
        return parts.ToDictionary(kv => kv.Key, kv => kv.Value.detach());
    }

    static Dictionary<string, IReadOnlyList<Tensor>> Group(IReadOnlyList<EncodeChunk> chunks, List<List<Tensor>> reps,
        Func<IReadOnlyList<IReadOnlyList<Tensor>>, IReadOnlyList<Tensor>> concat)
    {
        var result = new Dictionary<string, IReadOnlyList<Tensor>>();
        foreach (var group in chunks.Select((c, i) => (c.Group, i)).GroupBy(x => x.Group))
        {
            var members = group.Select(x => (IReadOnlyList<Tensor>)reps[x.i]).ToList();
            result[group.Key] = members.Count == 1 ? members[0] : concat(members);
        }
        return result;
    }

    /// <summary>Default concatenation: representation r of every chunk along dim 0 (chunks must agree in the other dims).</summary>
    public static IReadOnlyList<Tensor> ConcatAlongBatch(IReadOnlyList<IReadOnlyList<Tensor>> chunks) =>
        Enumerable.Range(0, chunks[0].Count).Select(r => cat(chunks.Select(c => c[r]).ToList(), 0)).ToList();

    /// <summary>Seeds every generator that dropout may draw from (CPU and all CUDA devices).</summary>
    public static void Reseed(long seed)
    {
        torch.manual_seed(seed);
        if (torch.cuda.is_available()) torch.cuda.manual_seed_all(seed);
    }
}
