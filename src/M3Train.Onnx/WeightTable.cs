namespace M3Train.Onnx;

/// <summary>
/// Hands out checkpoint weights by HF key, checking each shape exactly (a broadcastable mismatch is still a
/// mismatch), and reports every missing, misshapen or unexpected key at once.
/// </summary>
internal sealed class WeightTable
{
    static readonly string[] IgnoredPrefixes = ["pooler.", "lm_head.", "embeddings.position_ids"];

    readonly IReadOnlyDictionary<string, OnnxWeight> weights;
    readonly HashSet<string> used = new();
    readonly List<string> problems = new();

    public WeightTable(IReadOnlyDictionary<string, OnnxWeight> weights) => this.weights = weights;

    /// <summary>The weight's data, or an empty array (and a recorded problem) when it is missing or misshapen.</summary>
    public float[] Get(string key, params long[] shape)
    {
        used.Add(key);
        if (!weights.TryGetValue(key, out var w))
        {
            problems.Add($"missing '{key}' [{string.Join(", ", shape)}]");
            return new float[shape.Aggregate(1L, (a, b) => a * b)];
        }
        if (!w.Shape.SequenceEqual(shape) || w.Data.LongLength != shape.Aggregate(1L, (a, b) => a * b))
        {
            problems.Add($"'{key}' has shape {w.ShapeText} ({w.Data.LongLength} values), expected [{string.Join(", ", shape)}]");
            return new float[shape.Aggregate(1L, (a, b) => a * b)];
        }
        return w.Data;
    }

    public bool Has(string key) => weights.ContainsKey(key);

    public OnnxWeight? Find(string key) => weights.GetValueOrDefault(key);

    /// <summary>Throws with every problem seen, and every key no part of the graph asked for.</summary>
    public void ThrowIfInvalid()
    {
        var unexpected = weights.Keys
            .Where(k => !used.Contains(k) && !IgnoredPrefixes.Any(k.StartsWith))
            .Order(StringComparer.Ordinal)
            .Select(k => $"unexpected '{k}'");
        var all = problems.Concat(unexpected).ToList();
        if (all.Count == 0) return;
        const int shown = 12;
        string more = all.Count > shown ? $"; and {all.Count - shown} more" : "";
        throw new M3OnnxException($"the weights do not match the model config: {string.Join("; ", all.Take(shown))}{more}");
    }
}
