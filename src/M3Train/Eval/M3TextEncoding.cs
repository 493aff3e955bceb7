namespace M3Train.Eval;

/// <summary>
/// One text's representations as FlagEmbedding's <c>BGEM3FlagModel.encode</c> returns them;
/// a part that was not requested is null.
/// </summary>
/// <param name="Dense">The normalized CLS vector [D].</param>
/// <param name="LexicalWeights">Token id → the largest weight of that id in the text; the four special ids and weights ≤ 0 left out; ids in order of first occurrence.</param>
/// <param name="ColbertVectors">One normalized vector per token after &lt;s&gt; (&lt;/s&gt; included, no padding): [tokens-1][D'].</param>
public sealed record M3TextEncoding(
    float[]? Dense,
    IReadOnlyDictionary<int, float>? LexicalWeights,
    float[][]? ColbertVectors);
