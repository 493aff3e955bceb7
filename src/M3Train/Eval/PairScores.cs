namespace M3Train.Eval;

/// <summary>The three M3 scores of query–passage pairs (M3-SPEC section 5), one entry per pair.</summary>
public sealed record PairScores(double[] Dense, double[] Sparse, double[] Colbert)
{
    public int Count => Dense.Length;

    /// <summary><c>compute_score</c>'s <c>colbert+sparse+dense</c> of every pair.</summary>
    public double[] Hybrid(HybridWeights weights) =>
        Enumerable.Range(0, Count).Select(i => weights.Combine(Dense[i], Sparse[i], Colbert[i])).ToArray();
}
