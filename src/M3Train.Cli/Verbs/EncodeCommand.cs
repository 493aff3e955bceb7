using System.CommandLine;
using System.Text;
using M3Train.Model;
using M3Train.Onnx;
using M3Train.Text;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train encode</c>: dense, lexical and multi-vector representations of texts, one JSON line each.</summary>
public static class EncodeCommand
{
    /// <summary>Texts read, encoded and written per round, so memory stays bounded on large inputs.</summary>
    const int TextsPerRound = 8192;

    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model();

    static readonly Option<FileInfo> InputOption = new Option<FileInfo>("--input")
    {
        Description = "Texts: one per line, or JSONL rows with a \"text\" field (a .jsonl file, or a first line that is such a row).",
        Required = true,
    }.AcceptExistingOnly();

    static readonly Option<FileInfo> OutputOption = new("--output")
    {
        Description = "Where to write one JSON line per input text, in input order.",
        Required = true,
    };

    static readonly Option<bool> DenseOption = new("--dense") { Description = "Write \"dense\" (the default when no part is chosen)." };
    static readonly Option<bool> SparseOption = new("--sparse") { Description = "Write \"lexical_weights\" (token id → weight)." };
    static readonly Option<bool> ColbertOption = new("--colbert") { Description = "Write \"colbert\" (one vector per token after <s>)." };

    static readonly Option<int> MaxLengthOption = ModelOptions.MaxLength("--max-length", "Truncate texts to this many tokens including <s> and </s> (capped at the model's positions).");

    static readonly Option<int> BatchSizeOption = ModelOptions.BatchSize();
    static readonly Option<string> DeviceOption = CommonOptions.Device();
    static readonly Option<string> PrecisionOption = ModelOptions.Precision();

    static readonly Option<string> BackendOption = new Option<string>("--backend")
    {
        Description = "torch (a checkpoint folder, on --device) or onnx (a folder written by export-onnx, run by ONNX Runtime on the CPU).",
        DefaultValueFactory = _ => "torch",
    }.AcceptOnlyFromAmong("torch", "onnx");

    public static Command Create()
    {
        var command = new Command("encode", "Encode texts with an M3 checkpoint, as FlagEmbedding's BGEM3FlagModel.encode.")
        {
            ModelOption, InputOption, OutputOption, DenseOption, SparseOption, ColbertOption,
            MaxLengthOption, BatchSizeOption, DeviceOption, PrecisionOption, BackendOption,
        };
        command.SetAction(parseResult =>
        {
            var parts = (parseResult.GetValue(DenseOption) ? EncodingParts.Dense : 0)
                      | (parseResult.GetValue(SparseOption) ? EncodingParts.Lexical : 0)
                      | (parseResult.GetValue(ColbertOption) ? EncodingParts.Colbert : 0);
            parts = parts == 0 ? EncodingParts.Dense : parts;
            if (parseResult.GetValue(BackendOption) == "onnx")
                return RunOnnx(parseResult.GetValue(ModelOption)!, parseResult.GetValue(InputOption)!, parseResult.GetValue(OutputOption)!,
                    parts, parseResult.GetValue(MaxLengthOption), parseResult.GetValue(BatchSizeOption), parseResult.GetValue(DeviceOption)!);
            return Run(parseResult.GetValue(ModelOption)!, parseResult.GetValue(InputOption)!, parseResult.GetValue(OutputOption)!,
                parts, parseResult.GetValue(MaxLengthOption), parseResult.GetValue(BatchSizeOption),
                parseResult.GetValue(DeviceOption)!, parseResult.GetValue(PrecisionOption)!);
        });
        return command;
    }

    /// <summary>The same output from an exported ONNX model, without libtorch.</summary>
    static int RunOnnx(DirectoryInfo model, FileInfo input, FileInfo output, EncodingParts parts, int maxLength, int batchSize, string device)
    {
        if (device != "cpu")
            throw new M3TrainException($"--backend onnx runs on the CPU (Microsoft.ML.OnnxRuntime); --device {device} is for the torch backend.");
        if (!File.Exists(Path.Combine(model.FullName, "model.onnx")))
            throw new M3TrainException($"{model.FullName}: no model.onnx; --backend onnx takes a folder written by m3train export-onnx.");
        using var encoder = OnnxM3Encoder.Open(model.FullName);
        Directory.CreateDirectory(output.DirectoryName!);
        using var writer = new StreamWriter(output.FullName, append: false, new UTF8Encoding(false), bufferSize: 1 << 16);
        foreach (var round in InputRecords.Texts(input.FullName).Chunk(TextsPerRound))
            foreach (var e in encoder.Encode(round, batchSize, maxLength, parts))
            {
                writer.Write(EncodeOutputJson.Format(e, parts));
                writer.Write('\n');
            }
        return 0;
    }

    static int Run(DirectoryInfo model, FileInfo input, FileInfo output, EncodingParts parts, int maxLength, int batchSize, string device, string precision)
    {
        var (checkpoint, encoder) = ModelOptions.Load(model, device, precision);
        using var owned = checkpoint;
        Directory.CreateDirectory(output.DirectoryName!);
        using var writer = new StreamWriter(output.FullName, append: false, new UTF8Encoding(false), bufferSize: 1 << 16);
        foreach (var round in InputRecords.Texts(input.FullName).Chunk(TextsPerRound))
        {
            var encodings = encoder.Encode(round, maxLength, batchSize,
                dense: parts.HasFlag(EncodingParts.Dense), lexical: parts.HasFlag(EncodingParts.Lexical), colbert: parts.HasFlag(EncodingParts.Colbert));
            foreach (var e in encodings)
            {
                var shared = new M3Encoding(e.Dense ?? [], e.LexicalWeights ?? new Dictionary<int, float>(), e.ColbertVectors ?? []);
                writer.Write(EncodeOutputJson.Format(shared, parts));
                writer.Write('\n');
            }
        }
        return 0;
    }
}
