using System.CommandLine;
using System.Text;
using M3Train.Model;
using M3Train.Onnx;
using M3Train.Runtime;
using M3Train.Text;
using Serilog;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train encode</c>: dense, lexical and multi-vector representations of texts, one JSON line each in input
/// order, or the dense vectors as one .npy matrix [texts, hidden] for numpy.
/// </summary>
public static class EncodeCommand
{
    /// <summary>Texts read, encoded and written per round, so memory stays bounded on large inputs.</summary>
    const int TextsPerRound = 8192;

    static readonly Option<FileInfo> InputOption =
        PathOptions.Input("--input", "Texts: one per line, or JSONL rows with a \"text\" field (a .jsonl file, or a first line that is such a row).");

    static readonly Option<FileInfo> OutputOption =
        PathOptions.Output("--output", "Where to write one JSON line per input text, in input order (with --format npy: the .npy file); - for standard output.");

    static readonly Option<bool> DenseOption = new("--dense") { Description = "Write the dense vector (the default when no part is chosen)." };
    static readonly Option<bool> SparseOption = new("--sparse") { Description = "Write \"lexical_weights\" (token id → weight)." };
    static readonly Option<bool> ColbertOption = new("--colbert") { Description = "Write the multi-vector output (one vector per token after <s>)." };

    static readonly Option<int?> MaxLengthOption = MaxLength();

    static readonly Option<string> FormatOption = new Option<string>("--format")
    {
        Description = "jsonl: one JSON object per text; npy: the dense vectors as one float32 matrix [texts, hidden] (numpy.load).",
        DefaultValueFactory = _ => "jsonl",
    }.AcceptOnlyFromAmong("jsonl", "npy");

    static readonly Option<string> KeysOption = new Option<string>("--keys")
    {
        Description = "JSON key names: m3train (dense, lexical_weights, colbert) or flagembedding (dense_vecs, lexical_weights, colbert_vecs, as BGEM3FlagModel.encode returns).",
        DefaultValueFactory = _ => "m3train",
    }.AcceptOnlyFromAmong("m3train", "flagembedding");

    static readonly Option<string> BackendOption = new Option<string>("--backend")
    {
        Description = "torch (a checkpoint folder, on --device) or onnx (a folder written by export-onnx, run by ONNX Runtime on the CPU).",
        DefaultValueFactory = _ => "torch",
    }.AcceptOnlyFromAmong("torch", "onnx");

    static readonly ModelRunOptions Model = new();

    public static Command Create()
    {
        var command = new Command("encode", "Encode texts with an M3 checkpoint, as FlagEmbedding's BGEM3FlagModel.encode.")
        {
            InputOption, OutputOption, DenseOption, SparseOption, ColbertOption, MaxLengthOption, FormatOption, KeysOption, BackendOption,
        };
        foreach (var option in Model.All) command.Add(option);
        command.SetAction(parse =>
        {
            var parts = (parse.GetValue(DenseOption) ? EncodingParts.Dense : 0)
                      | (parse.GetValue(SparseOption) ? EncodingParts.Lexical : 0)
                      | (parse.GetValue(ColbertOption) ? EncodingParts.Colbert : 0);
            return Run(Model.Bind(parse), new EncodeRequest(
                parse.GetValue(InputOption)!, parse.GetValue(OutputOption)!, parts == 0 ? EncodingParts.Dense : parts,
                parse.GetValue(MaxLengthOption), parse.GetValue(BackendOption) == "onnx", parse.GetValue(FormatOption) == "npy",
                parse.GetValue(KeysOption) == "flagembedding" ? EncodeKeyNames.FlagEmbedding : EncodeKeyNames.M3Train));
        });
        return command;
    }

    static Option<int?> MaxLength()
    {
        var option = new Option<int?>("--max-length")
        {
            Description = "Truncate texts to this many tokens including <s> and </s> (default: all the model's positions take, 8192 for BGE-M3). " +
                          "Texts above 512 tokens go in smaller batches, so memory stays that of --batch-size texts of 512.",
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 2) result.AddError("--max-length must be at least 2 (room for <s> and </s>).");
        });
        return option;
    }

    static int Run(ModelRun run, EncodeRequest request)
    {
        if (request.Npy && request.Parts != EncodingParts.Dense)
            throw new M3TrainException("--format npy: writes the dense vectors only (one matrix); use --format jsonl for --sparse and --colbert.");
        if (request.Onnx && run.Device != "cpu")
            throw new M3TrainException($"--backend onnx runs on the CPU (Microsoft.ML.OnnxRuntime); --device {run.Device} is for the torch backend.");
        VerbOutput.Check("--output", request.Output, ("--input", request.Input));
        return request.Onnx ? RunOnnx(run, request) : RunTorch(run, request);
    }

    /// <summary>The same output from an exported ONNX model, without libtorch.</summary>
    static int RunOnnx(ModelRun run, EncodeRequest request)
    {
        if (!File.Exists(Path.Combine(run.Model.FullName, "model.onnx")))
            throw new M3TrainException($"{run.Model.FullName}: no model.onnx; --backend onnx takes a folder written by m3train export-onnx.");
        int threads = run.Threads ?? ComputeThreads.Default(hostThreads: 0);
        Log.Information("Threads: {Threads} intra-op in ONNX Runtime ({How:l}), on {Cores} cores", threads, run.Threads is null ? "default: cores - 1; --threads to change" : "--threads", ComputeThreads.Cores);
        using var encoder = OnnxM3Encoder.Open(run.Model.FullName, threads);
        int maxLength = Cap(request.MaxLength ?? encoder.Manifest.MaxLength, encoder.Manifest.Config.MaxTokens);
        Write(run, request, encoder.Manifest.Config.HiddenSize, texts => encoder.Encode(texts, run.BatchSize, maxLength, request.Parts));
        return 0;
    }

    static int RunTorch(ModelRun run, EncodeRequest request)
    {
        var (checkpoint, encoder) = ModelOptions.Load(run);
        using var owned = checkpoint;
        int maxLength = Cap(request.MaxLength ?? encoder.MaxTokens, encoder.MaxTokens);
        // The inference tokenizes each text once and batches by length itself (LengthBatches), as the ONNX backend does.
        Write(run, request, checkpoint.Model.Config.HiddenSize, texts => encoder.Encode(texts, maxLength, run.BatchSize,
                dense: request.Parts.HasFlag(EncodingParts.Dense), lexical: request.Parts.HasFlag(EncodingParts.Lexical),
                colbert: request.Parts.HasFlag(EncodingParts.Colbert))
            .Select(e => new M3Encoding(e.Dense ?? [], e.LexicalWeights ?? new Dictionary<int, float>(), e.ColbertVectors ?? [])).ToList());
        return 0;
    }

    static int Cap(int requested, int modelMax)
    {
        int length = ModelInference.CapLength(requested, modelMax, "--max-length");
        Log.Information("Texts are truncated to {MaxLength} tokens", length);
        return length;
    }

    /// <summary>
    /// Reads the input in rounds of <see cref="TextsPerRound"/> texts, encodes each round with <paramref name="encode"/> (each text
    /// after <c>--query-instruction</c>), checks every encoding for non-finite values (naming its input line) and writes it; the
    /// output is complete only at the end.
    /// </summary>
    static void Write(ModelRun run, EncodeRequest request, int hidden, Func<IReadOnlyList<string>, IReadOnlyList<M3Encoding>> encode)
    {
        using var output = VerbOutput.Open("--output", request.Output, ("--input", request.Input));
        using (var npy = request.Npy ? new NpyMatrixWriter(output.Stream, hidden) : null)
        using (var json = request.Npy ? null : new StreamWriter(output.Stream, new UTF8Encoding(false), bufferSize: 1 << 16, leaveOpen: true))
        {
            foreach (var round in InputRecords.Texts(request.Input.FullName).Chunk(TextsPerRound))
            {
                var encodings = encode(round.Select(t => run.Query(t.Text)).ToList());
                for (int i = 0; i < round.Length; i++)
                {
                    var e = encodings[i];
                    if (NonFinitePart(e) is { } part) throw NonFiniteOutput.Error(request.Input.FullName, round[i].Line, part);
                    if (npy is not null)
                    {
                        npy.WriteRow(e.Dense);
                        continue;
                    }
                    json!.Write(EncodeOutputJson.Format(e, request.Parts, request.Keys));
                    json.Write('\n');
                }
            }
            npy?.Complete();
        }
        output.Commit();
    }

    static string? NonFinitePart(M3Encoding e) =>
        !FiniteValues.All(e.Dense) ? "dense vector"
        : !e.LexicalWeights.Values.All(float.IsFinite) ? "lexical weights"
        : !e.ColbertVecs.All(row => FiniteValues.All(row)) ? "multi-vector output"
        : null;
}
