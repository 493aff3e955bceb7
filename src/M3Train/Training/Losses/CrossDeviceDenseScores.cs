using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// Dense scores with cross-device negatives (docs/METHOD.md, "Cross-device negatives"), expressed over
/// embeddings that someone else has gathered from all W ranks.
/// </summary>
/// <remarks>
/// <para><b>Shapes</b>: gathered queries [W·B, d] and passages [W·B·G, d], both in rank order (rank w's slice is
/// rows w·B .. w·B+B-1, resp. w·B·G ..). <see cref="Global"/> [W·B, W·B·G] = q·pᵀ, its targets
/// <see cref="Targets"/> [W·B] = (global row)·G; <see cref="Local"/> [B, B·G] is this rank's own block,
/// which the ensemble and self-distillation use (sparse and multi-vector stay local).</para>
/// <para><b>Gradients</b>: this is plain autograd over whatever is passed in; the gather decides which gradient
/// the embeddings get (<see cref="CrossDeviceGradient"/>). By default (<c>exact</c>) the gradient of the gathered
/// tensors is summed over the ranks and each rank back-propagates its own slot of the sum, so every rank's loss reaches
/// every rank's embeddings and W ranks with B rows each train exactly as one with W·B. With <c>local</c> each rank
/// back-propagates only its own loss's gradient in its own slot (the other slots are constants), as FlagEmbedding's
/// <c>_dist_gather_tensor</c> does; after the gradients are averaged, the dense loss contributes 1/W of its exact
/// gradient.</para>
/// <para>Scores are similarities, not divided by τ: <see cref="M3UnifiedLoss"/> applies the temperature.
/// The dense loss is then the mean over all W·B rows, as in the reference.</para>
/// <para><b>Reference</b>: FlagEmbedding <c>_compute_cross_device_neg_loss</c>; BGE-M3 paper, "efficient
/// batching".</para>
/// </remarks>
public sealed record CrossDeviceDenseScores
{
    /// <summary>[W·B, W·B·G] similarities of every gathered query against every gathered passage.</summary>
    public required Tensor Global { get; init; }

    /// <summary>[W·B] int64: the positive column (global row)·G of each row of <see cref="Global"/>.</summary>
    public required Tensor Targets { get; init; }

    /// <summary>[B, B·G] this rank's block of <see cref="Global"/> (a view: gradients flow into Global).</summary>
    public required Tensor Local { get; init; }

    public required int Rank { get; init; }
    public required int WorldSize { get; init; }
    public required int GroupSize { get; init; }

    /// <summary>Scores gathered dense embeddings; rank is this rank's index in 0..worldSize-1.</summary>
    public static CrossDeviceDenseScores FromGathered(Tensor queries, Tensor passages, int rank, int worldSize)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is not in 0..{worldSize - 1}");
        if (queries.dim() != 2 || passages.dim() != 2 || queries.shape[1] != passages.shape[1])
            throw new ArgumentException(
                $"expected queries [W·B, d] and passages [W·B·G, d], got [{string.Join(", ", queries.shape)}] and [{string.Join(", ", passages.shape)}]");
        long allQueries = queries.shape[0], allPassages = passages.shape[0];
        if (allQueries % worldSize != 0 || allPassages % allQueries != 0)
            throw new ArgumentException($"{allQueries} queries and {allPassages} passages do not split into {worldSize} equal groups");
        long b = allQueries / worldSize;
        int g = (int)(allPassages / allQueries);

        var global = queries.matmul(passages.t());                                              // [W·B, W·B·G]
        var local = global[TensorIndex.Slice(rank * b, (rank + 1) * b), TensorIndex.Slice(rank * b * g, (rank + 1) * b * g)]; // [B, B·G]
        return new CrossDeviceDenseScores
        {
            Global = global,
            Targets = arange(allQueries, dtype: ScalarType.Int64, device: global.device) * g,
            Local = local,
            Rank = rank,
            WorldSize = worldSize,
            GroupSize = g,
        };
    }
}
