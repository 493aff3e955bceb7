namespace M3Train.Eval;

/// <summary>How <see cref="RetrievalEvaluator"/> retrieves (the BGE-M3 paper's protocol for each).</summary>
public enum RetrievalMode
{
    /// <summary>Exact top-k by inner product of dense embeddings.</summary>
    Dense,

    /// <summary>Top-k by lexical matching score through an inverted index.</summary>
    Sparse,

    /// <summary>The dense top-<c>rerank-k</c> re-ranked by the multi-vector score.</summary>
    Colbert,

    /// <summary>The dense and sparse top-<c>rerank-k</c> lists fused by weighted sum (<c>w_d·d + w_s·s</c>).</summary>
    DenseSparse,

    /// <summary>The dense top-<c>rerank-k</c> re-ranked by <c>w_d·dense + w_s·sparse + w_c·colbert</c>.</summary>
    All,
}
