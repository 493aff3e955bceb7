namespace M3Train.Onnx;

/// <summary>What <see cref="M3OnnxExporter.Export"/> wrote.</summary>
/// <param name="ModelPath">The <c>model.onnx</c> file.</param>
/// <param name="ExternalDataPath">The weight file, or null when the weights are inside the model file.</param>
/// <param name="ModelBytes">Size of <c>model.onnx</c>.</param>
/// <param name="ExternalDataBytes">Size of the weight file (0 when there is none).</param>
/// <param name="Manifest">The manifest written beside them.</param>
public sealed record OnnxExportResult(string ModelPath, string? ExternalDataPath, long ModelBytes, long ExternalDataBytes, OnnxManifest Manifest);
