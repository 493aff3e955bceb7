using M3Train.Model;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

/// <summary>
/// The lexical representation as a dense [N, V] matrix, FlagEmbedding's <c>sparse_vecs</c> in eval mode: the
/// O(N·V) reference the slot-based lexical scores are checked against.
/// </summary>
internal static class SparseEmbeddingReference
{
    /// <summary>ids [N, L], weights [N, L] → [N, V]: each id's max weight in its text, 0 for ids the text lacks.</summary>
    public static Tensor Of(Tensor ids, Tensor weights, long vocabSize)
    {
        using var scope = NewDisposeScope();
        var (sorted, pooled) = M3Scores.MaxPerId(ids, weights);
        var bag = zeros(ids.shape[0], vocabSize, dtype: pooled.dtype, device: pooled.device).scatter_add(1, sorted, pooled);
        return bag.MoveToOuterDisposeScope();
    }
}
