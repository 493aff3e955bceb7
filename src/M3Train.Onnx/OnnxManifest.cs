using System.Text.Json;

namespace M3Train.Onnx;

/// <summary>
/// <c>manifest.json</c> beside an exported <c>model.onnx</c>: what the model is and how to feed it, so a consumer needs
/// neither the checkpoint nor this project to use it. Written and read as snake_case JSON.
/// </summary>
public sealed record OnnxManifest
{
    public const string FileName = "manifest.json";
    public const string FormatName = "m3train-onnx";

    /// <summary>Always <see cref="FormatName"/>; tells this file from other manifests.</summary>
    public string Format { get; init; } = FormatName;

    public int FormatVersion { get; init; } = 1;

    /// <summary>The ONNX file, relative to the folder.</summary>
    public string ModelFile { get; init; } = "model.onnx";

    /// <summary>The external weight file relative to the folder, or null when the weights are inside the model file.</summary>
    public string? ExternalDataFile { get; init; }

    /// <summary>"fp32" or "fp16": the weights' and matrix products' type; inputs are int64 and outputs float32 either way.</summary>
    public required string Precision { get; init; }

    public required int Opset { get; init; }

    public required long IrVersion { get; init; }

    /// <summary>Input names: input_ids and attention_mask, int64 [batch, sequence].</summary>
    public required IReadOnlyList<string> Inputs { get; init; }

    /// <summary>Output names: dense_vecs [batch, D], sparse_weights [batch, sequence], colbert_vecs [batch, sequence-1, C].</summary>
    public required IReadOnlyList<string> Outputs { get; init; }

    /// <summary>Tokens per text (with &lt;s&gt; and &lt;/s&gt;) that encoders truncate to by default.</summary>
    public required int MaxLength { get; init; }

    public required int ColbertDim { get; init; }

    public required OnnxEncoderConfig Config { get; init; }

    /// <summary>Tokenizer files copied into the folder.</summary>
    public required IReadOnlyList<string> TokenizerFiles { get; init; }

    /// <summary>The checkpoint the weights came from (an absolute path when the exporter knew it).</summary>
    public string? SourceCheckpoint { get; init; }

    public string Producer { get; init; } = "";

    public void Write(string folder) =>
        File.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(this, OnnxEncoderConfig.Json) + "\n");

    public static OnnxManifest Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            throw new M3OnnxException($"{path}: not found ({folder} is not a folder written by export-onnx)");
        OnnxManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<OnnxManifest>(File.ReadAllText(path), OnnxEncoderConfig.Json);
        }
        catch (JsonException e)
        {
            throw new M3OnnxException($"{path}: not a valid manifest ({e.Message})", e);
        }
        if (manifest is null || manifest.Format != FormatName)
            throw new M3OnnxException($"{path}: not an {FormatName} manifest");
        return manifest;
    }
}
