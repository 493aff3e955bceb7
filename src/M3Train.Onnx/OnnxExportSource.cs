namespace M3Train.Onnx;

/// <summary>
/// What <see cref="M3OnnxExporter"/> exports: the encoder config, the weights as plain arrays, and where they came from.
/// <see cref="Weights"/> uses HF keys without the <c>roberta.</c> prefix (<c>embeddings.word_embeddings.weight</c>,
/// <c>encoder.layer.{i}.…</c>) plus the M3 heads <c>colbert_linear.{weight,bias}</c> and <c>sparse_linear.{weight,bias}</c>;
/// <c>pooler.*</c>, <c>lm_head.*</c> and <c>embeddings.position_ids</c> are ignored, any other key is an error.
/// Reading a checkpoint into this shape is the caller's job (the CLI does it with TorchSharp.PyBridge), so this
/// project needs no TorchSharp.
/// </summary>
public sealed record OnnxExportSource
{
    public required OnnxEncoderConfig Config { get; init; }

    public required IReadOnlyDictionary<string, OnnxWeight> Weights { get; init; }

    /// <summary>Folder with the tokenizer files (<c>sentencepiece.bpe.model</c> at least), copied beside the model.</summary>
    public required string TokenizerFolder { get; init; }

    /// <summary>The checkpoint the weights came from, recorded in the manifest; null when they came from elsewhere.</summary>
    public string? SourceCheckpoint { get; init; }
}
