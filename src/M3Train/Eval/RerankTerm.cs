namespace M3Train.Eval;

/// <summary>
/// One weighted score in <see cref="CandidateReranker"/>: either the candidates' first-stage score, or a callback
/// that scores the given corpus indices for the current query (e.g. ColBERT's late interaction, or
/// <see cref="LexicalScore"/>) and returns one score per index, in order.
/// </summary>
public sealed record RerankTerm(double Weight, Func<IReadOnlyList<int>, double[]>? Scorer)
{
    /// <summary>The score the candidates already carry (dense, for the paper's protocol).</summary>
    public static RerankTerm FirstStage(double weight) => new(weight, null);

    public static RerankTerm Of(double weight, Func<IReadOnlyList<int>, double[]> scorer) => new(weight, scorer);
}
