namespace M3Train.Text;

/// <summary>
/// Per-text lexical weights from per-token weights, as FlagEmbedding's inference (<c>_process_token_weights</c>):
/// for each id the largest weight, skipping the special ids and weights ≤ 0. Shared by the ONNX and TorchSharp
/// encode paths so both print the same maps.
/// </summary>
public static class LexicalWeights
{
    /// <param name="ids">The text's token ids (padding may follow: the pad id is special).</param>
    /// <param name="weights">relu(sparse_linear(H)) at the same positions.</param>
    /// <param name="specialIds">Ids never weighted: &lt;s&gt;, &lt;pad&gt;, &lt;/s&gt;, &lt;unk&gt;.</param>
    public static Dictionary<int, float> FromTokenWeights(ReadOnlySpan<int> ids, ReadOnlySpan<float> weights, IReadOnlyCollection<int> specialIds)
    {
        var wide = new long[ids.Length];
        for (int i = 0; i < ids.Length; i++) wide[i] = ids[i];
        return FromTokenWeights(wide, weights, specialIds);
    }

    public static Dictionary<int, float> FromTokenWeights(ReadOnlySpan<long> ids, ReadOnlySpan<float> weights, IReadOnlyCollection<int> specialIds)
    {
        if (ids.Length != weights.Length)
            throw new ArgumentException($"{ids.Length} ids but {weights.Length} weights");
        var result = new Dictionary<int, float>();
        for (int i = 0; i < ids.Length; i++)
        {
            int id = checked((int)ids[i]);
            float w = weights[i];
            if (w <= 0 || specialIds.Contains(id)) continue;
            if (!result.TryGetValue(id, out float seen) || w > seen) result[id] = w;
        }
        return result;
    }
}
