using static TorchSharp.torch;

namespace M3Train.Data;

/// <summary>
/// A <see cref="TrainBatch"/> on a device. Shapes: QueryIds/QueryMask [B, Lq] int64; PassageIds/PassageMask
/// [B·G, Lp] int64 (null for text rows); TeacherScores [B, G] float32 or null.
/// </summary>
public sealed record TrainBatchTensors(Tensor QueryIds, Tensor QueryMask, Tensor? PassageIds, Tensor? PassageMask, Tensor? TeacherScores)
    : IDisposable
{
    public void Dispose()
    {
        QueryIds.Dispose();
        QueryMask.Dispose();
        PassageIds?.Dispose();
        PassageMask?.Dispose();
        TeacherScores?.Dispose();
    }
}
