namespace M3Train.Text;

/// <summary>
/// Length-sorted batching for inference, longest texts first (as FlagEmbedding's <c>encode</c>), so a batch pads
/// little and the first batch shows at once whether memory suffices. The TorchSharp and ONNX encoders both batch so.
/// </summary>
public static class LengthBatches
{
    /// <summary>Indices into <paramref name="lengths"/> in batches of at most <paramref name="maxRows"/>, longest first (stable among equal lengths).</summary>
    public static IEnumerable<int[]> LongestFirst(IReadOnlyList<int> lengths, int maxRows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRows, 1);
        return Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).Chunk(maxRows);
    }
}
