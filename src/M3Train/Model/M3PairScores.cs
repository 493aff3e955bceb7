namespace M3Train.Model;

/// <summary>
/// FlagEmbedding's <c>compute_score</c> for one (query, passage) pair: the three scores and the two weighted
/// combinations <c>sparse+dense = (w_s·s + w_d·d)/(w_s + w_d)</c> and
/// <c>colbert+sparse+dense = (w_d·d + w_s·s + w_c·c)/(w_d + w_s + w_c)</c>.
/// </summary>
public sealed record M3PairScores(float Dense, float Sparse, float Colbert, float SparseDense, float ColbertSparseDense);
