namespace M3Train.Onnx;

/// <summary>Numeric precision of an exported model's weights and matrix products.</summary>
public enum OnnxPrecision
{
    /// <summary>Everything in float32.</summary>
    Fp32,

    /// <summary>
    /// Weights, matrix products and GELU in float16; the residual stream, LayerNorm, softmax (with the additive
    /// padding mask) and the head normalizations in float32; outputs in float32 (see <see cref="M3OnnxExporter"/>).
    /// </summary>
    Fp16,
}
