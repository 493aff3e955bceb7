namespace M3Train.Onnx;

/// <summary>The key names of <c>m3train encode</c>'s JSON lines.</summary>
public enum EncodeKeyNames
{
    /// <summary><c>dense</c>, <c>lexical_weights</c>, <c>colbert</c>.</summary>
    M3Train,

    /// <summary>
    /// <c>dense_vecs</c>, <c>lexical_weights</c>, <c>colbert_vecs</c>: the keys of the dictionary FlagEmbedding's
    /// <c>BGEM3FlagModel.encode</c> returns, so code written against it reads the lines unchanged.
    /// </summary>
    FlagEmbedding,
}
