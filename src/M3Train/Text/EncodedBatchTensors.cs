using M3Train.Runtime;
using static TorchSharp.torch;

namespace M3Train.Text;

/// <summary>Turns an <see cref="EncodedBatch"/> into the model's int64 inputs.</summary>
public static class EncodedBatchTensors
{
    /// <summary>
    /// <c>input_ids</c> and <c>attention_mask</c>, int64 [B, L], on <paramref name="device"/>; a CUDA copy is
    /// queued without waiting for the device (<see cref="HostToDevice"/>).
    /// </summary>
    public static (Tensor InputIds, Tensor AttentionMask) ToTensors(this EncodedBatch batch, Device device)
    {
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        using var hostIds = tensor(batch.InputIds, shape, ScalarType.Int64);    // [B, L]
        using var hostMask = tensor(batch.AttentionMask, shape, ScalarType.Int64); // [B, L]
        return (HostToDevice.Copy(hostIds, device), HostToDevice.Copy(hostMask, device));
    }
}
