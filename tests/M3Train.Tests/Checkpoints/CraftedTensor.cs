namespace M3Train.Tests.Checkpoints;

/// <summary>One tensor of a hand-made torch.save file: a view (offset, shape, stride) of storage <c>data/Key</c>.</summary>
internal sealed record CraftedTensor(string Name, string StorageType, string Key, long StorageElements, long Offset, long[] Shape, long[] Stride)
{
    /// <summary>A contiguous float tensor over the whole of its own storage.</summary>
    public static CraftedTensor Float(string name, string key, params long[] shape)
    {
        var stride = new long[shape.Length];
        long step = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            stride[i] = step;
            step *= shape[i];
        }
        return new CraftedTensor(name, "FloatStorage", key, step, 0, shape, stride);
    }
}
