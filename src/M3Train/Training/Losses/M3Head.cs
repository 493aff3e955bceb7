namespace M3Train.Training.Losses;

/// <summary>
/// One of BGE-M3's three retrieval heads (docs/METHOD.md, "Scores"). Config lists of heads use the snake_case
/// names <c>dense</c>, <c>sparse</c>, <c>colbert</c>.
/// </summary>
public enum M3Head
{
    /// <summary>CLS embedding, inner product (<c>s_dense</c>).</summary>
    Dense,

    /// <summary>Lexical token weights, sum over shared token ids (<c>s_lex</c>).</summary>
    Sparse,

    /// <summary>Multi-vector late interaction (<c>s_mul</c>).</summary>
    Colbert,
}
