namespace M3Train.Text;

/// <summary>
/// Which of the three M3 representations an encoding computes, keeps or prints: the TorchSharp inference keeps
/// them on the host (its model always computes all three), the ONNX encoder asks the graph only for them, and
/// <c>m3train encode</c> writes them.
/// </summary>
[Flags]
public enum EncodingParts
{
    /// <summary>The normalized CLS vector.</summary>
    Dense = 1,

    /// <summary>Lexical weights: token id → the largest weight of that id in the text.</summary>
    Lexical = 2,

    /// <summary>One vector per token after &lt;s&gt; (padding left out).</summary>
    Colbert = 4,

    All = Dense | Lexical | Colbert,
}
