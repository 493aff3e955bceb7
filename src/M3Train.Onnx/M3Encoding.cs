namespace M3Train.Onnx;

/// <summary>
/// One text's M3 representations, as FlagEmbedding's <c>BGEM3FlagModel.encode</c> returns them (docs/METHOD.md, "Inference").
/// A part that was not requested is empty.
/// </summary>
/// <param name="Dense">The normalized CLS vector [D].</param>
/// <param name="LexicalWeights">Token id → the largest weight of that id in the text; special ids and weights ≤ 0 left out; ids in order of first occurrence.</param>
/// <param name="ColbertVecs">One normalized vector per token after &lt;s&gt; (&lt;/s&gt; included, padding not): [tokens-1][C].</param>
public sealed record M3Encoding(float[] Dense, IReadOnlyDictionary<int, float> LexicalWeights, float[][] ColbertVecs);
