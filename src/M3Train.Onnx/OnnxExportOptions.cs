namespace M3Train.Onnx;

/// <summary>How <see cref="M3OnnxExporter"/> writes the model.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Oldest opset the graph can use: it needs <c>LayerNormalization</c> (opset 17).</summary>
    public const int MinOpset = 17;

    /// <summary>Newest opset this exporter knows the IR version and operator forms of.</summary>
    public const int MaxOpset = 23;

    /// <summary>Weight and compute precision; default <see cref="OnnxPrecision.Fp32"/>.</summary>
    public OnnxPrecision Precision { get; init; } = OnnxPrecision.Fp32;

    /// <summary>
    /// ONNX opset, <see cref="MinOpset"/>..<see cref="MaxOpset"/>; default 17 (IR 8), which every current runtime
    /// and Debian's python3-onnx checker read.
    /// </summary>
    public int Opset { get; init; } = MinOpset;

    /// <summary>
    /// Token limit recorded in the manifest and used by <see cref="OnnxM3Encoder"/> to truncate; default null = the
    /// most the position table allows (max_position_embeddings - pad_token_id - 1, 8192 for BGE-M3).
    /// </summary>
    public int? MaxLength { get; init; }

    /// <summary>
    /// Write the weights to <c>model.onnx.data</c> even when the model is under protobuf's 2 GB limit; default false
    /// (external data only when needed).
    /// </summary>
    public bool ForceExternalData { get; init; }

    /// <summary>Replace an existing output folder; default false (an existing folder is an error).</summary>
    public bool Force { get; init; }
}
