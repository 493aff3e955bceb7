using System.Reflection;
using System.Runtime.InteropServices;
using Google.Protobuf;
using M3Train.Text;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace M3Train.Onnx;

/// <summary>
/// Exports an XLM-R encoder with the three M3 heads to a self-contained folder: <c>model.onnx</c> (standard ONNX
/// operators only, weights as initializers), <c>model.onnx.data</c> when the weights go to an external file,
/// the tokenizer files and <see cref="OnnxManifest"/>.
/// Graph: inputs <c>input_ids</c>, <c>attention_mask</c> (int64 [batch, sequence]); outputs <c>dense_vecs</c>
/// [batch, D] (normalized CLS), <c>sparse_weights</c> [batch, sequence] (relu token weights, special ids zeroed),
/// <c>colbert_vecs</c> [batch, sequence-1, C] (padded rows zero, rows normalized); all outputs float32.
/// Precision <see cref="OnnxPrecision.Fp16"/> stores weights in float16 and runs matrix products and GELU in
/// float16, but keeps the residual stream, LayerNorm, the masked softmax and the heads' normalization in float32
/// (see <see cref="M3OnnxGraph"/>), so consumers see the same types in both precisions.
/// Protobuf cannot hold more than 2 GB (and writes a corrupt file rather than refuse), so bigger models (BGE-M3 in
/// fp32: 2.27 GB) get their weights in <c>model.onnx.data</c>, each at a 64 KiB-aligned offset so runtimes can map it.
/// </summary>
public static class M3OnnxExporter
{
    public const string ModelFileName = "model.onnx";
    public const string ExternalDataFileName = "model.onnx.data";

    /// <summary>Tokenizer files copied when present; the first one is required.</summary>
    public static readonly IReadOnlyList<string> TokenizerFileNames = TokenizerFiles.Names;

    /// <summary>Above this many weight bytes the model cannot be one protobuf message (2 GiB less room for the graph).</summary>
    internal const long InlineLimitBytes = (2L << 30) - (64L << 20);

    /// <summary>Weights smaller than this stay inline even in external-data mode (as onnx's own converter does).</summary>
    const int ExternalMinBytes = 1024;

    const long ExternalAlignment = 64 * 1024;

    public static OnnxExportResult Export(OnnxExportSource source, string outputFolder, OnnxExportOptions options)
    {
        var config = source.Config;
        config.Validate();
        CheckOptions(outputFolder, options);
        int maxLength = options.MaxLength ?? config.MaxTokens;
        if (maxLength < 2 || maxLength > config.MaxTokens)
            throw new M3OnnxException($"max length {maxLength} is out of range: the model takes 2..{config.MaxTokens} tokens (max_position_embeddings {config.MaxPositionEmbeddings} - pad_token_id {config.PadTokenId} - 1)");
        string tokenizerModel = Path.Combine(source.TokenizerFolder, TokenizerFileNames[0]);
        if (!File.Exists(tokenizerModel))
            throw new M3OnnxException($"{tokenizerModel}: not found (the export folder needs the tokenizer to encode text)");

        var builder = new OnnxGraphBuilder("m3_encoder", options.Opset);
        int colbertDim = M3OnnxGraph.Write(builder, config, source.Weights, options.Precision);
        string target = PrepareFolder(outputFolder, source);
        string staging = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.exporting-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            var (manifest, external, dataBytes) = WriteFiles(builder, source, staging, options, maxLength, colbertDim);
            Publish(staging, target);
            string modelPath = Path.Combine(target, ModelFileName);
            return new OnnxExportResult(modelPath, external ? Path.Combine(target, ExternalDataFileName) : null, new FileInfo(modelPath).Length, dataBytes, manifest);
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>Writes the model, its weights, the tokenizer files and the manifest into <paramref name="folder"/>.</summary>
    static (OnnxManifest Manifest, bool External, long DataBytes) WriteFiles(OnnxGraphBuilder builder, OnnxExportSource source, string folder,
        OnnxExportOptions options, int maxLength, int colbertDim)
    {
        long weightBytes = builder.Weights.Sum(x => (long)Bytes(x.Data).Length);
        bool external = options.ForceExternalData || weightBytes > InlineLimitBytes;
        long dataBytes = PlaceWeights(builder, external ? Path.Combine(folder, ExternalDataFileName) : null);

        long irVersion = IrVersion(options.Opset);
        string producerVersion = typeof(M3OnnxExporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0";
        string precision = options.Precision == OnnxPrecision.Fp16 ? "fp16" : "fp32";
        var model = new ModelProto
        {
            IrVersion = irVersion,
            ProducerName = "M3Train",
            ProducerVersion = producerVersion,
            DocString = "XLM-RoBERTa encoder with BGE-M3 dense, sparse and multi-vector heads",
            Graph = builder.Graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "m3train.precision", Value = precision });
        model.WriteToFile(Path.Combine(folder, ModelFileName));

        var copied = TokenizerFiles.Copy(source.TokenizerFolder, folder, TokenizerFileNames);
        var manifest = new OnnxManifest
        {
            ExternalDataFile = external ? ExternalDataFileName : null,
            Precision = precision,
            Opset = options.Opset,
            IrVersion = irVersion,
            Inputs = [M3OnnxGraph.InputIds, M3OnnxGraph.AttentionMask],
            Outputs = [M3OnnxGraph.DenseVecs, M3OnnxGraph.SparseWeights, M3OnnxGraph.ColbertVecs],
            MaxLength = maxLength,
            ColbertDim = colbertDim,
            Config = source.Config,
            TokenizerFiles = copied,
            SourceCheckpoint = source.SourceCheckpoint is null ? null : Path.GetFullPath(source.SourceCheckpoint),
            Producer = $"M3Train {producerVersion}",
        };
        manifest.Write(folder);
        return (manifest, external, dataBytes);
    }

    /// <summary>
    /// Moves the finished export into place: a new folder by one rename; into an existing (forced) folder file by file,
    /// each a rename, with a data file of an earlier export removed when this one has none. A failure before this
    /// leaves the output folder as it was.
    /// </summary>
    static void Publish(string staging, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            return;
        }
        if (!File.Exists(Path.Combine(staging, ExternalDataFileName))) File.Delete(Path.Combine(target, ExternalDataFileName));
        foreach (string file in Directory.GetFiles(staging))
            File.Move(file, Path.Combine(target, Path.GetFileName(file)), overwrite: true);
    }

    /// <summary>
    /// The checks that need no weights (opset range, existing output folder), so a caller can fail fast before
    /// reading gigabytes of checkpoint; <see cref="Export"/> makes them again.
    /// </summary>
    public static void CheckOptions(string outputFolder, OnnxExportOptions options)
    {
        if (options.Opset < OnnxExportOptions.MinOpset)
            throw new M3OnnxException($"opset {options.Opset} is too old: the graph needs LayerNormalization, which opset {OnnxExportOptions.MinOpset} introduced (use --opset {OnnxExportOptions.MinOpset} or newer)");
        if (options.Opset > OnnxExportOptions.MaxOpset)
            throw new M3OnnxException($"opset {options.Opset} is newer than this exporter supports ({OnnxExportOptions.MinOpset}..{OnnxExportOptions.MaxOpset})");
        if (File.Exists(outputFolder))
            throw new M3OnnxException($"{outputFolder}: exists and is a file");
        if (Directory.Exists(outputFolder) && !options.Force)
            throw new M3OnnxException($"{outputFolder}: exists (use --force to overwrite)");
    }

    /// <summary>IR version of the ONNX release that introduced the opset (1.12: 17 → IR 8 … 1.18: 23 → IR 11).</summary>
    internal static long IrVersion(int opset) => opset switch
    {
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        _ => 11,
    };

    /// <summary>
    /// The output folder's full path, after checking that it is not the folder the weights or tokenizer come from;
    /// an existing folder (refused unless forced by <see cref="CheckOptions"/>) gets the export's own files replaced
    /// and keeps its other files. Its parent is created.
    /// </summary>
    static string PrepareFolder(string outputFolder, OnnxExportSource source)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputFolder));
        foreach (string? input in new[] { source.TokenizerFolder, source.SourceCheckpoint })
        {
            if (input is not null && string.Equals(full, Path.TrimEndingDirectorySeparator(Path.GetFullPath(input)), StringComparison.Ordinal))
                throw new M3OnnxException($"{outputFolder}: the output folder is the model folder; export to a new folder");
        }
        string parent = Path.GetDirectoryName(full) ?? throw new M3OnnxException($"{outputFolder}: cannot export into a file-system root");
        Directory.CreateDirectory(parent);
        return full;
    }

    /// <summary>Puts each weight's bytes inline, or into the data file at a 64 KiB-aligned offset; returns the data file's size.</summary>
    static long PlaceWeights(OnnxGraphBuilder builder, string? dataPath)
    {
        using var data = dataPath is null ? null : new FileStream(dataPath, FileMode.CreateNew, FileAccess.Write);
        foreach (var (tensor, array) in builder.Weights)
        {
            var bytes = Bytes(array);
            if (data is null || bytes.Length < ExternalMinBytes)
            {
                tensor.RawData = ByteString.CopyFrom(bytes);
            }
            else
            {
                long offset = (data.Position + ExternalAlignment - 1) / ExternalAlignment * ExternalAlignment;
                data.SetLength(offset);
                data.Position = offset;
                data.Write(bytes);
                tensor.DataLocation = TensorProto.Types.DataLocation.External;
                tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = ExternalDataFileName });
                tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString() });
                tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString() });
            }
            builder.Graph.Initializer.Add(tensor);
        }
        return data?.Length ?? 0;
    }

    /// <summary>Raw little-endian bytes, the layout of ONNX's raw_data.</summary>
    static ReadOnlySpan<byte> Bytes(Array data) => data switch
    {
        float[] f => MemoryMarshal.AsBytes(f.AsSpan()),
        Half[] h => MemoryMarshal.AsBytes(h.AsSpan()),
        _ => throw new ArgumentException($"unsupported weight array {data.GetType()}"),
    };
}
