namespace M3Train.Onnx;

/// <summary>Which of the three M3 representations an encode call computes and prints.</summary>
[Flags]
public enum M3OutputParts
{
    Dense = 1,
    Lexical = 2,
    Colbert = 4,
    All = Dense | Lexical | Colbert,
}
