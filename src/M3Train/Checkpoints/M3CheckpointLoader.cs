using System.Collections;
using M3Train.Model;
using Serilog;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// Loads a BGE-M3 / XLM-R checkpoint folder (spec section 11): <c>config.json</c>, the encoder as
/// <c>model.safetensors</c> or <c>pytorch_model.bin</c> (keys with or without <c>roberta.</c>, optional
/// <c>lm_head.*</c> and <c>pooler.*</c>), and FlagEmbedding's head files <c>colbert_linear.pt</c> and
/// <c>sparse_linear.pt</c>. Every tensor's shape is checked (PyBridge would broadcast some mismatches
/// silently); missing and unexpected keys are errors unless allowed.
/// </summary>
public static class M3CheckpointLoader
{
    const int MaxKeysListed = 20;

    public static M3Checkpoint Load(string directory, M3CheckpointLoadOptions? options = null)
    {
        options ??= new M3CheckpointLoadOptions();
        if (!System.IO.Directory.Exists(directory))
            throw new M3TrainException($"{directory}: checkpoint folder not found.");
        string configPath = Path.Combine(directory, M3Keys.ConfigFile);
        if (!File.Exists(configPath))
            throw new M3TrainException($"{directory}: no {M3Keys.ConfigFile}; a checkpoint folder needs config.json and model.safetensors or pytorch_model.bin.");
        var config = XlmRobertaConfig.Load(configPath);

        var (weightsPath, file) = ReadEncoder(directory);
        var heads = ReadHeads(directory);
        M3Model? model = null;
        var passthrough = new Dictionary<string, Tensor>();
        try
        {
            string prefix = file.Any(kv => kv.Key.StartsWith(CheckpointLayout.MaskedLmPrefix, StringComparison.Ordinal))
                ? CheckpointLayout.MaskedLmPrefix : "";
            bool hasLmHead = file.Any(kv => kv.Key.StartsWith(M3Keys.LmHead, StringComparison.Ordinal));
            int? colbertDim = heads is null ? options.ColbertDim : (int)heads.Value.Colbert["weight"].shape[0];
            model = new M3Model(config, colbertDim, hasLmHead || options.WithLmHead);

            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var fileKeys = file.Select(kv => kv.Key).ToHashSet();
            var assigned = new HashSet<string>();
            var unexpected = new List<string>();
            var shapeErrors = new List<string>();
            using (no_grad())
            {
                foreach (var (key, tensor) in file)
                {
                    string encoderKey = prefix.Length > 0 && key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : key;
                    if (M3Keys.IsPassthrough(encoderKey))
                    {
                        passthrough[key] = tensor;
                        continue;
                    }
                    string name = ParameterName(key, encoderKey);
                    if (!parameters.TryGetValue(name, out var parameter))
                    {
                        unexpected.Add(key);
                        passthrough[key] = tensor;
                        continue;
                    }
                    if (!tensor.shape.SequenceEqual(parameter.shape))
                        shapeErrors.Add($"{key}: {SafetensorsFile.Shape(tensor.shape)} in the file, {SafetensorsFile.Shape(parameter.shape)} in a model of this config.json");
                    else if (!IsTiedAlias(key, fileKeys))
                    {
                        parameter.copy_(tensor);
                        assigned.Add(name);
                    }
                    tensor.Dispose();
                }
            }
            var missing = parameters.Keys
                .Where(n => n.StartsWith(M3Keys.Encoder, StringComparison.Ordinal) || (hasLmHead && n.StartsWith(M3Keys.LmHead, StringComparison.Ordinal)))
                .Where(n => !assigned.Contains(n))
                .Select(n => n.StartsWith(M3Keys.Encoder, StringComparison.Ordinal) ? prefix + n[M3Keys.Encoder.Length..] : n)
                .ToList();

            if (shapeErrors.Count > 0)
                throw new M3TrainException($"{weightsPath}: {shapeErrors.Count} tensor(s) do not fit the model: {List(shapeErrors)}");
            if (missing.Count > 0 && !options.AllowMissing)
                throw new M3TrainException($"{weightsPath}: {missing.Count} model key(s) missing: {List(missing)} (allow_missing keeps them freshly initialized).");
            if (unexpected.Count > 0 && !options.AllowUnexpected)
                throw new M3TrainException($"{weightsPath}: {unexpected.Count} unexpected key(s): {List(unexpected)} (allow_unexpected keeps them and writes them back on save).");
            if (missing.Count > 0) Log.Warning("{Path}: {Count} key(s) missing, freshly initialized: {Keys}", weightsPath, missing.Count, List(missing));
            if (unexpected.Count > 0) Log.Warning("{Path}: {Count} unexpected key(s) kept unused: {Keys}", weightsPath, unexpected.Count, List(unexpected));

            if (!hasLmHead && options.WithLmHead)
                Log.Warning("{Path}: no lm_head.* (not a masked-LM checkpoint), so the masked-LM head is freshly initialized; " +
                            "start RetroMAE from a masked-LM checkpoint (e.g. xlm-roberta-large) to keep its pretrained head", weightsPath);

            if (heads is { } h)
            {
                CopyHead(model.ColbertHead, h.Colbert, Path.Combine(directory, M3Keys.ColbertFile));
                CopyHead(model.SparseHead, h.Sparse, Path.Combine(directory, M3Keys.SparseFile));
            }
            var layout = new CheckpointLayout(prefix, file.Select(kv => kv.Key).ToList(), passthrough);
            return new M3Checkpoint(directory, model, layout, heads is not null, missing, unexpected);
        }
        catch
        {
            model?.Dispose();
            foreach (var t in passthrough.Values) t.Dispose();
            foreach (var (_, t) in file) t.Dispose();
            throw;
        }
        finally
        {
            if (heads is { } h)
                foreach (var t in h.Colbert.Values.Concat(h.Sparse.Values)) t.Dispose();
        }
    }

    /// <summary>
    /// The M3Model parameter a file key loads into. The tied decoder keys map to what they are tied to
    /// (word embeddings, <c>lm_head.bias</c>) so their shapes are checked.
    /// </summary>
    static string ParameterName(string key, string encoderKey)
    {
        if (key == M3Keys.LmDecoderWeight) return M3Keys.WordEmbeddings;
        if (key == M3Keys.LmDecoderBias) return M3Keys.LmBias;
        if (key.StartsWith(M3Keys.LmHead, StringComparison.Ordinal)) return key;
        return M3Keys.Encoder + encoderKey;
    }

    /// <summary>
    /// The decoder weight is the word embedding matrix itself, and the decoder bias is <c>lm_head.bias</c>
    /// when the file has that key too: such copies only have their shapes checked.
    /// </summary>
    static bool IsTiedAlias(string key, HashSet<string> fileKeys) =>
        key == M3Keys.LmDecoderWeight || (key == M3Keys.LmDecoderBias && fileKeys.Contains(M3Keys.LmBias));

    static (string Path, List<KeyValuePair<string, Tensor>> Tensors) ReadEncoder(string directory)
    {
        string safetensors = Path.Combine(directory, M3Keys.SafetensorsFile);
        if (File.Exists(safetensors)) return (safetensors, SafetensorsFile.Read(safetensors));
        string pickle = Path.Combine(directory, M3Keys.PickleFile);
        if (File.Exists(pickle))
        {
            var table = Unpickle(pickle);
            var ordered = table.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
            return (pickle, ordered);
        }
        throw new M3TrainException($"{directory}: neither {M3Keys.SafetensorsFile} nor {M3Keys.PickleFile} found (sharded checkpoints are not supported).");
    }

    static (Dictionary<string, Tensor> Colbert, Dictionary<string, Tensor> Sparse)? ReadHeads(string directory)
    {
        string colbert = Path.Combine(directory, M3Keys.ColbertFile), sparse = Path.Combine(directory, M3Keys.SparseFile);
        var absent = new[] { colbert, sparse }.Where(p => !File.Exists(p)).Select(Path.GetFileName).ToList();
        if (absent.Count == 0)
            return (Unpickle(colbert), Unpickle(sparse));
        Log.Warning("{Directory}: {Files} not found, so the sparse (lexical) and multi-vector (ColBERT) heads are freshly initialized with random weights; their scores mean nothing until trained",
            directory, string.Join(" and ", absent));
        return null;
    }

    static Dictionary<string, Tensor> Unpickle(string path)
    {
        Hashtable table;
        try
        {
            table = PyTorchUnpickler.UnpickleStateDict(path);
        }
        catch (Exception e) when (e is not M3TrainException)
        {
            throw new M3TrainException($"{path}: not a readable PyTorch state dict ({e.Message}).", e);
        }
        var result = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry entry in table)
        {
            if (entry.Key is not string key || entry.Value is not Tensor tensor)
                throw new M3TrainException($"{path}: expected a state dict of tensors, found entry '{entry.Key}' of type {entry.Value?.GetType().Name ?? "null"}.");
            result[key] = tensor;
        }
        return result;
    }

    static void CopyHead(nn.Module head, Dictionary<string, Tensor> state, string path)
    {
        var parameters = head.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var missing = parameters.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var unexpected = state.Keys.Where(k => !parameters.ContainsKey(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new M3TrainException($"{path}: expected keys {string.Join(", ", parameters.Keys)}; missing: [{string.Join(", ", missing)}], unexpected: [{string.Join(", ", unexpected)}].");
        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            var tensor = state[name];
            if (!tensor.shape.SequenceEqual(parameter.shape))
                throw new M3TrainException($"{path}: {name}: {SafetensorsFile.Shape(tensor.shape)} in the file, {SafetensorsFile.Shape(parameter.shape)} expected by config.json.");
            parameter.copy_(tensor);
        }
    }

    static string List(IReadOnlyList<string> items) =>
        string.Join(", ", items.Take(MaxKeysListed)) + (items.Count > MaxKeysListed ? $", ... ({items.Count - MaxKeysListed} more)" : "");
}
