using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Data;

/// <summary>Moves a host-side <see cref="TrainBatch"/>'s token inputs onto a device.</summary>
public static class TrainBatchExtensions
{
    public static TrainBatchTensors ToTensors(this TrainBatch batch, Device device)
    {
        var (queryIds, queryMask) = batch.Queries.ToTensors(device);       // [B, Lq]
        Tensor? passageIds = null, passageMask = null;
        if (batch.Passages is { } passages) (passageIds, passageMask) = passages.ToTensors(device); // [B*G, Lp]
        return new TrainBatchTensors(queryIds, queryMask, passageIds, passageMask);
    }
}
