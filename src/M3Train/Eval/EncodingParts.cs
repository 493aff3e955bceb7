namespace M3Train.Eval;

/// <summary>Which M3 representations an encoding keeps on the host (the model always computes all three).</summary>
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
