using M3Train.Model;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// Loads a BGE-M3 / XLM-R checkpoint folder: <c>config.json</c>, the encoder as <c>model.safetensors</c> or
/// <c>pytorch_model.bin</c> (keys with or without <c>roberta.</c>, optional <c>lm_head.*</c> and <c>pooler.*</c>), and
/// FlagEmbedding's head files <c>colbert_linear.pt</c> and <c>sparse_linear.pt</c>.
/// </summary>
/// <remarks>
/// The files are treated as untrusted. Every file is checked against itself first (<see cref="SafetensorsReader"/>,
/// <see cref="TorchPickleReader"/>), then the whole of it against the model config.json describes (names, shapes,
/// floating-point dtypes; missing and unexpected keys are errors unless allowed), and only then is the model
/// allocated and filled one tensor at a time. Parameters the files do not provide may take at most
/// max(1 GiB, the weights' own size), so a config.json cannot ask for a model its weights do not back.
/// </remarks>
public static class M3CheckpointLoader
{
    const int MaxKeysListed = 20;
    const long FreshBytesAllowance = 1L << 30;

    public static M3Checkpoint Load(string directory, M3CheckpointLoadOptions? options = null)
    {
        options ??= new M3CheckpointLoadOptions();
        if (string.IsNullOrWhiteSpace(directory))
            throw new M3TrainException("no checkpoint folder given: set model.path in the run config (or --model on the command line).");
        if (File.Exists(directory))
            throw new M3TrainException($"{directory}: is a file; a checkpoint is a folder holding config.json and the weights.");
        if (!System.IO.Directory.Exists(directory))
            throw new M3TrainException($"{directory}: checkpoint folder not found.");
        string configPath = Path.Combine(directory, M3Keys.ConfigFile);
        if (!File.Exists(configPath))
            throw new M3TrainException($"{directory}: no {M3Keys.ConfigFile}; a checkpoint folder needs config.json and model.safetensors or pytorch_model.bin.");
        var config = XlmRobertaConfig.Load(configPath);

        using var encoder = OpenEncoder(directory);
        using var heads = OpenHeads(directory, options.RequireHeads);
        int? colbertDim = heads is null ? options.ColbertDim : ColbertDim(heads.Colbert, config, configPath);
        var plan = LoadPlan.Match(config, configPath, encoder, heads, colbertDim, options);
        if (plan.FreshBytes > Math.Max(FreshBytesAllowance, plan.FileBytes))
            throw new M3TrainException($"{configPath}: describes a model of which {Gb(plan.FreshBytes)} is not in {encoder.Path} ({Gb(plan.FileBytes)}); " +
                                       "its sizes are not backed by the weights, so it is refused. Check that config.json belongs to these weights.");

        M3Model? model = null;
        var passthrough = new Dictionary<string, Tensor>();
        try
        {
            model = new M3Model(config, colbertDim, plan.HasLmHead || options.WithLmHead);
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            using (no_grad())
            {
                foreach (var (entry, name) in plan.Assignments)
                {
                    using var tensor = encoder.Read(entry);
                    parameters[name].copy_(tensor);
                }
                foreach (var entry in plan.Passthrough) passthrough[entry.Name] = encoder.Read(entry);
                if (heads is not null)
                {
                    CopyHead(model.ColbertHead, heads.Colbert);
                    CopyHead(model.SparseHead, heads.Sparse);
                }
            }

            if (plan.Missing.Count > 0) Log.Warning("{Path}: {Count} key(s) missing, freshly initialized: {Keys}", encoder.Path, plan.Missing.Count, List(plan.Missing));
            if (plan.Unexpected.Count > 0) Log.Warning("{Path}: {Count} unexpected key(s) kept unused: {Keys}", encoder.Path, plan.Unexpected.Count, List(plan.Unexpected));
            if (!plan.HasLmHead && options.WithLmHead)
                Log.Warning("{Path}: no lm_head.* (not a masked-LM checkpoint), so the masked-LM head is freshly initialized; " +
                            "start RetroMAE from a masked-LM checkpoint (e.g. xlm-roberta-large) to keep its pretrained head", encoder.Path);
            var layout = new CheckpointLayout(plan.Prefix, encoder.Entries.Select(e => e.Name).ToList(), passthrough);
            return new M3Checkpoint(directory, model, layout, heads is not null, plan.Missing, plan.Unexpected);
        }
        catch
        {
            model?.Dispose();
            foreach (var t in passthrough.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>The encoder's weights file in <paramref name="directory"/>: model.safetensors, else pytorch_model.bin.</summary>
    internal static ITensorFile OpenEncoder(string directory)
    {
        string safetensors = Path.Combine(directory, M3Keys.SafetensorsFile);
        if (File.Exists(safetensors)) return SafetensorsFile.Open(safetensors);
        string pickle = Path.Combine(directory, M3Keys.PickleFile);
        if (File.Exists(pickle)) return new TorchPickleReader(pickle);
        throw new M3TrainException($"{directory}: neither {M3Keys.SafetensorsFile} nor {M3Keys.PickleFile} found (sharded checkpoints are not supported).");
    }

    static HeadFiles? OpenHeads(string directory, bool required)
    {
        string colbert = Path.Combine(directory, M3Keys.ColbertFile), sparse = Path.Combine(directory, M3Keys.SparseFile);
        var absent = new[] { colbert, sparse }.Where(p => !File.Exists(p)).Select(Path.GetFileName).ToList();
        if (absent.Count == 0)
        {
            var colbertFile = new TorchPickleReader(colbert);
            try
            {
                return new HeadFiles(colbertFile, new TorchPickleReader(sparse));
            }
            catch
            {
                colbertFile.Dispose();
                throw;
            }
        }
        if (required)
            throw new M3TrainException($"{directory}: {string.Join(" and ", absent)} missing; this checkpoint was saved with both head files, so it is incomplete. " +
                                       "Restore the file(s), or resume from another checkpoint.");
        if (absent.Count == 1)
            throw new M3TrainException($"{directory}: {absent[0]} is missing but the other head file is there: the folder is incomplete. " +
                                       "Restore it, or remove both head files to start the sparse and multi-vector heads from random weights.");
        Log.Warning("{Directory}: {Files} not found, so the sparse (lexical) and multi-vector (ColBERT) heads are freshly initialized with random weights; their scores mean nothing until trained",
            directory, string.Join(" and ", absent));
        return null;
    }

    /// <summary>D' of a ColBERT head file: its weight is [D', D].</summary>
    static int ColbertDim(ITensorFile colbert, XlmRobertaConfig config, string configPath)
    {
        var weight = colbert.Entries.FirstOrDefault(e => e.Name == "weight")
            ?? throw new M3TrainException($"{colbert.Path}: no 'weight' tensor; a ColBERT head holds weight [D', D] and bias [D'].");
        if (weight.Shape is not [var dim and > 0 and <= 65536, var input] || input != config.HiddenSize)
            throw new M3TrainException($"{colbert.Path}: weight is {SafetensorsFile.Shape(weight.Shape)}; expected [D', {config.HiddenSize}] with D' in 1..65536 (hidden_size of {configPath}).");
        return (int)dim;
    }

    static void CopyHead(nn.Module head, ITensorFile file)
    {
        var parameters = head.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var entry in file.Entries)
        {
            using var tensor = file.Read(entry);
            parameters[entry.Name].copy_(tensor);
        }
    }

    internal static string List(IReadOnlyList<string> items) =>
        string.Join(", ", items.Take(MaxKeysListed)) + (items.Count > MaxKeysListed ? $", ... ({items.Count - MaxKeysListed} more)" : "");

    static string Gb(long bytes) => $"{bytes / 1e9:0.###} GB";
}
