using M3Train.Onnx;
using M3Train.Text;

namespace M3Train.Cli;

/// <summary>What <c>m3train encode</c> reads and writes, bound once from its options.</summary>
/// <param name="Input">Texts, one a line, or JSONL rows with "text".</param>
/// <param name="Output">The output file; <c>-</c> for standard output.</param>
/// <param name="Parts">The representations written.</param>
/// <param name="MaxLength">Token limit of a text (with &lt;s&gt; and &lt;/s&gt;); null: the model's maximum.</param>
/// <param name="Onnx">Run an export-onnx folder with ONNX Runtime instead of a checkpoint with libtorch.</param>
/// <param name="Npy">Write the dense vectors as one .npy matrix instead of JSON lines.</param>
/// <param name="Keys">The JSON lines' key names.</param>
public sealed record EncodeRequest(FileInfo Input, FileInfo Output, EncodingParts Parts, int? MaxLength, bool Onnx, bool Npy, EncodeKeyNames Keys);
