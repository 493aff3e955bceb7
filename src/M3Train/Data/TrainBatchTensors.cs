using static TorchSharp.torch;

namespace M3Train.Data;

/// <summary>
/// The token inputs of a <see cref="TrainBatch"/> on a device. Shapes: QueryIds/QueryMask [B, Lq] int64;
/// PassageIds/PassageMask [B·G, Lp] int64 (null for text rows). Teacher scores and the false-negative mask stay on
/// the host until the loss uploads them, once per device that needs them.
/// </summary>
public sealed record TrainBatchTensors(Tensor QueryIds, Tensor QueryMask, Tensor? PassageIds, Tensor? PassageMask) : IDisposable
{
    public void Dispose()
    {
        QueryIds.Dispose();
        QueryMask.Dispose();
        PassageIds?.Dispose();
        PassageMask?.Dispose();
    }
}
