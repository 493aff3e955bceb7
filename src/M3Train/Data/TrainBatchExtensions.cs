using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Data;

/// <summary>Moves a host-side <see cref="TrainBatch"/> onto a device.</summary>
public static class TrainBatchExtensions
{
    public static TrainBatchTensors ToTensors(this TrainBatch batch, Device device)
    {
        var (queryIds, queryMask) = batch.Queries.ToTensors(device);       // [B, Lq]
        Tensor? passageIds = null, passageMask = null, scores = null;
        if (batch.Passages is { } passages) (passageIds, passageMask) = passages.ToTensors(device); // [B*G, Lp]
        if (batch.TeacherScores is { } t) scores = tensor(t, [batch.BatchSize, batch.GroupSize], ScalarType.Float32, device); // [B, G]
        return new TrainBatchTensors(queryIds, queryMask, passageIds, passageMask, scores);
    }
}
