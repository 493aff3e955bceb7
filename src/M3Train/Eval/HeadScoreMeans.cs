using M3Train.Model;

namespace M3Train.Eval;

/// <summary>Mean dense, sparse and multi-vector score of a set of query–passage pairs.</summary>
public sealed record HeadScoreMeans(int Pairs, double Dense, double Sparse, double Colbert)
{
    /// <summary>The means of the pairs of <paramref name="scores"/> at <paramref name="indices"/>.</summary>
    public static HeadScoreMeans Of(IReadOnlyList<M3PairScores> scores, IReadOnlyList<int> indices) => indices.Count == 0
        ? new HeadScoreMeans(0, double.NaN, double.NaN, double.NaN)
        : new HeadScoreMeans(indices.Count, indices.Average(i => scores[i].Dense), indices.Average(i => scores[i].Sparse), indices.Average(i => scores[i].Colbert));
}
