namespace M3Train.Onnx;

/// <summary>One checkpoint tensor as plain data: row-major float32 values and the PyTorch shape.</summary>
public sealed record OnnxWeight(float[] Data, long[] Shape)
{
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
