using System.CommandLine;
using M3Train.Checkpoints;
using M3Train.Onnx;
using Serilog;
using static TorchSharp.torch;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train export-onnx</c>: a checkpoint folder (encoder + M3 heads + tokenizer) to an ONNX folder that runs
/// with ONNX Runtime alone. The weights are read here with the TorchSharp checkpoint loader; M3Train.Onnx writes the graph.
/// Its errors (<see cref="M3OnnxException"/>) reach the user as plain messages, like <see cref="M3TrainException"/>.
/// </summary>
public static class ExportOnnxCommand
{
    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model();

    static readonly Option<DirectoryInfo> OutputOption =
        PathOptions.OutputFolder("--output", "Folder to write model.onnx (and model.onnx.data above 2 GB), the tokenizer files and manifest.json to.");

    static readonly Option<OnnxPrecision> PrecisionOption = new("--precision")
    {
        Description = "fp32, or fp16 (float16 weights and matrix products; LayerNorm, softmax and outputs in float32).",
        DefaultValueFactory = _ => OnnxPrecision.Fp32,
    };

    static readonly Option<int> OpsetOption = new("--opset")
    {
        Description = $"ONNX opset, {OnnxExportOptions.MinOpset} (IR 8, readable by every current runtime) to {OnnxExportOptions.MaxOpset}.",
        DefaultValueFactory = _ => OnnxExportOptions.MinOpset,
    };

    static readonly Option<int?> MaxLengthOption = new("--max-length")
    {
        Description = "Tokens per text that ONNX encoding truncates to (recorded in manifest.json); default: all the position table allows.",
    };

    static readonly Option<bool> ForceOption = new("--force")
    {
        Description = "Write into an existing output folder, replacing the export's files.",
    };

    public static Command Create()
    {
        var command = new Command("export-onnx", "Export a checkpoint (encoder and dense/sparse/ColBERT heads) to ONNX with its tokenizer.")
        {
            ModelOption, OutputOption, PrecisionOption, OpsetOption, MaxLengthOption, ForceOption,
        };
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ModelOption)!,
            parseResult.GetValue(OutputOption)!,
            parseResult.GetValue(PrecisionOption),
            parseResult.GetValue(OpsetOption),
            parseResult.GetValue(MaxLengthOption),
            parseResult.GetValue(ForceOption)));
        return command;
    }

    static int Run(DirectoryInfo model, DirectoryInfo output, OnnxPrecision precision, int opset, int? maxLength, bool force)
    {
        var options = new OnnxExportOptions { Precision = precision, Opset = opset, MaxLength = maxLength, Force = force };
        M3OnnxExporter.CheckOptions(output.FullName, options);
        var source = ReadCheckpoint(model.FullName);
        Log.Information("Exporting {Model} ({Layers} layers, hidden {Hidden}) to {Output} in {Precision}, opset {Opset}",
            model.FullName, source.Config.NumHiddenLayers, source.Config.HiddenSize, output.FullName, precision.ToString().ToLowerInvariant(), opset);
        var result = M3OnnxExporter.Export(source, output.FullName, options);
        Log.Information("Wrote {Model} ({ModelMiB:F1} MiB){External}, max length {MaxLength}",
            result.ModelPath, result.ModelBytes / 1048576.0,
            result.ExternalDataPath is null ? "" : $" and {result.ExternalDataPath} ({result.ExternalDataBytes / 1048576.0:F1} MiB)",
            result.Manifest.MaxLength);
        return 0;
    }

    /// <summary>
    /// The checkpoint through the project's loader (model.safetensors or pytorch_model.bin, with or without the
    /// masked-LM <c>roberta.</c> prefix, every shape checked), as HF-keyed arrays; LM-head weights are dropped.
    /// Both head files must be there: the loader would otherwise make random heads.
    /// </summary>
    static OnnxExportSource ReadCheckpoint(string folder)
    {
        var missing = new[] { "colbert_linear.pt", "sparse_linear.pt" }.Where(h => !File.Exists(Path.Combine(folder, h))).ToList();
        if (missing.Count > 0)
            throw new M3TrainException($"{folder}: no {string.Join(" or ", missing)}: exporting a folder without heads would give meaningless sparse and ColBERT outputs (export a checkpoint saved with its M3 heads)");
        var config = OnnxEncoderConfig.FromHfConfig(Path.Combine(folder, "config.json"));
        using var checkpoint = M3Checkpoint.Load(folder);
        var weights = new Dictionary<string, OnnxWeight>();
        foreach (var (name, parameter) in checkpoint.Model.named_parameters())
        {
            if (name.StartsWith("lm_head.", StringComparison.Ordinal)) continue;
            // M3Model holds the encoder as its field "model"; the heads are top-level, as in FlagEmbedding.
            string key = name.StartsWith("model.", StringComparison.Ordinal) ? name["model.".Length..] : name;
            using var values = parameter.detach().to_type(ScalarType.Float32).cpu().contiguous();
            weights[key] = new OnnxWeight(values.data<float>().ToArray(), parameter.shape);
        }
        return new OnnxExportSource { Config = config, Weights = weights, TokenizerFolder = folder, SourceCheckpoint = folder };
    }
}
