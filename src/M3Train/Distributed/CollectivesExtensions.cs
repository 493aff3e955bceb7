using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>The blocking forms of the collectives.</summary>
public static class CollectivesExtensions
{
    public static void AllReduce(this ICollectives collectives, Tensor tensor, ReduceOp op = ReduceOp.Sum) =>
        collectives.StartAllReduce(tensor, op).Wait();

    /// <summary>[B, ...] on every rank → a new [W·B, ...] tensor in rank order, on the input's device.</summary>
    public static Tensor AllGather(this ICollectives collectives, Tensor input)
    {
        long[] shape = input.shape.Length == 0 ? [collectives.WorldSize] : [input.shape[0] * collectives.WorldSize, .. input.shape[1..]];
        var output = empty(shape, input.dtype, input.device);
        try
        {
            collectives.StartAllGather(input, output).Wait();
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    public static void Broadcast(this ICollectives collectives, Tensor tensor, int root = 0) =>
        collectives.StartBroadcast(tensor, root).Wait();
}
