using M3Train.Model;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// What loading a checkpoint will do, decided from the files' headers alone: which file tensor fills which model
/// parameter, which are kept as they are, which are missing or unexpected. Every mismatch is an error here,
/// before the model is allocated.
/// </summary>
internal sealed record LoadPlan(
    string Prefix,
    bool HasLmHead,
    IReadOnlyList<(TensorEntry Entry, string Parameter)> Assignments,
    IReadOnlyList<TensorEntry> Passthrough,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    long FileBytes,
    long FreshBytes)
{
    public static LoadPlan Match(XlmRobertaConfig config, string configPath, ITensorFile encoder, HeadFiles? heads, int? colbertDim, M3CheckpointLoadOptions options)
    {
        var entries = encoder.Entries;
        string prefix = entries.Any(e => e.Name.StartsWith(CheckpointLayout.MaskedLmPrefix, StringComparison.Ordinal)) ? CheckpointLayout.MaskedLmPrefix : "";
        bool hasLmHead = entries.Any(e => e.Name.StartsWith(M3Keys.LmHead, StringComparison.Ordinal));
        var expected = M3ParameterShapes.For(config, colbertDim ?? config.HiddenSize, hasLmHead || options.WithLmHead);
        var fileKeys = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);

        var assignments = new List<(TensorEntry, string)>();
        var filledBy = new Dictionary<string, string>(StringComparer.Ordinal);
        var passthrough = new List<TensorEntry>();
        var unexpected = new List<string>();
        var errors = new List<string>();
        foreach (var entry in entries)
        {
            string key = entry.Name;
            string encoderKey = prefix.Length > 0 && key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : key;
            if (M3Keys.IsPassthrough(encoderKey))
            {
                passthrough.Add(entry);
                continue;
            }
            string name = ParameterName(key, encoderKey);
            if (!expected.TryGetValue(name, out var shape))
            {
                unexpected.Add(key);
                passthrough.Add(entry);
                continue;
            }
            if (!entry.Shape.SequenceEqual(shape))
                errors.Add($"{key}: {SafetensorsFile.Shape(entry.Shape)} in the file, {SafetensorsFile.Shape(shape)} in a model of this config.json");
            else if (!IsFloatingPoint(entry.DType))
                errors.Add($"{key}: {entry.DType} in the file where the model has floating-point weights (not converted)");
            else if (!IsTiedAlias(key, fileKeys))
            {
                if (filledBy.TryGetValue(name, out string? other))
                    errors.Add($"{key}: holds the same weight as {other}");
                filledBy[name] = key;
                assignments.Add((entry, name));
            }
        }
        if (heads is not null)
        {
            errors.AddRange(HeadErrors(heads.Colbert, "colbert_linear.", expected));
            errors.AddRange(HeadErrors(heads.Sparse, "sparse_linear.", expected));
        }
        if (errors.Count > 0)
            throw new M3TrainException($"{encoder.Path}: {errors.Count} tensor(s) do not fit the model {configPath} describes: {M3CheckpointLoader.List(errors)}");

        var missing = expected.Keys
            .Where(n => n.StartsWith(M3Keys.Encoder, StringComparison.Ordinal) || (hasLmHead && n.StartsWith(M3Keys.LmHead, StringComparison.Ordinal)))
            .Where(n => !filledBy.ContainsKey(n))
            .Order(StringComparer.Ordinal)
            .Select(n => n.StartsWith(M3Keys.Encoder, StringComparison.Ordinal) ? prefix + n[M3Keys.Encoder.Length..] : n)
            .ToList();
        if (missing.Count > 0 && !options.AllowMissing)
            throw new M3TrainException($"{encoder.Path}: {missing.Count} key(s) of the model {configPath} describes are missing: {M3CheckpointLoader.List(missing)} (allow_missing keeps them freshly initialized).");
        if (unexpected.Count > 0 && !options.AllowUnexpected)
            throw new M3TrainException($"{encoder.Path}: {unexpected.Count} key(s) the model {configPath} describes does not have: {M3CheckpointLoader.List(unexpected)} (allow_unexpected keeps them and writes them back on save).");

        bool HeadFromFile(string n) => heads is not null && (n.StartsWith("colbert_linear.", StringComparison.Ordinal) || n.StartsWith("sparse_linear.", StringComparison.Ordinal));
        long fresh = M3ParameterShapes.Fp32Bytes(expected.Where(kv => !filledBy.ContainsKey(kv.Key) && !HeadFromFile(kv.Key)).Select(kv => kv.Value));
        long fileBytes = entries.Sum(e => e.Bytes);
        return new LoadPlan(prefix, hasLmHead, assignments, passthrough, missing, unexpected, fileBytes, fresh);
    }

    /// <summary>A head file must hold exactly the head's weight and bias, in the model's shapes and a floating-point dtype.</summary>
    static IEnumerable<string> HeadErrors(ITensorFile file, string prefix, Dictionary<string, long[]> expected)
    {
        var wanted = expected.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);
        var names = file.Entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var missing = wanted.Keys.Where(k => !names.Contains(k)).ToList();
        var unexpected = names.Where(k => !wanted.ContainsKey(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            yield return $"{file.Path}: expected keys {string.Join(", ", wanted.Keys)}; missing: [{string.Join(", ", missing)}], unexpected: [{string.Join(", ", unexpected)}]";
        foreach (var entry in file.Entries.Where(e => wanted.ContainsKey(e.Name)))
        {
            if (!entry.Shape.SequenceEqual(wanted[entry.Name]))
                yield return $"{file.Path}: {entry.Name}: {SafetensorsFile.Shape(entry.Shape)} in the file, {SafetensorsFile.Shape(wanted[entry.Name])} expected by config.json";
            else if (!IsFloatingPoint(entry.DType))
                yield return $"{file.Path}: {entry.Name}: {entry.DType} in the file where the head has floating-point weights (not converted)";
        }
    }

    /// <summary>
    /// Weights of another floating-point precision are converted as every HF loader does; integer or boolean data
    /// where the model has floats means a damaged or crafted file, and is refused.
    /// </summary>
    static bool IsFloatingPoint(ScalarType type) => type is ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64;

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
}
