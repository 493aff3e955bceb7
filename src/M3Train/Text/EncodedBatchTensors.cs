using static TorchSharp.torch;

namespace M3Train.Text;

/// <summary>Turns an <see cref="EncodedBatch"/> into the model's int64 inputs.</summary>
public static class EncodedBatchTensors
{
    /// <summary><c>input_ids</c> and <c>attention_mask</c>, int64 [B, L], on <paramref name="device"/>.</summary>
    public static (Tensor InputIds, Tensor AttentionMask) ToTensors(this EncodedBatch batch, Device device)
    {
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        var ids = tensor(batch.InputIds, shape, ScalarType.Int64, device);    // [B, L]
        var mask = tensor(batch.AttentionMask, shape, ScalarType.Int64, device); // [B, L]
        return (ids, mask);
    }
}
