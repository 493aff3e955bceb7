using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>A world of one: all-reduce and broadcast leave the tensor as it is, all-gather copies it.</summary>
public sealed class SingleProcessCollectives : ICollectives
{
    public int Rank => 0;
    public int WorldSize => 1;
    public string Backend => "single";

    public ICollectiveWork StartAllReduce(Tensor tensor, ReduceOp op)
    {
        CollectiveArguments.AllReduce(tensor, op, tensor.device_type);
        return CompletedWork.Instance;
    }

    public ICollectiveWork StartAllGather(Tensor input, Tensor output)
    {
        CollectiveArguments.AllGather(input, output, 1, input.device_type);
        using (no_grad()) output.view_as(input).copy_(input);
        return CompletedWork.Instance;
    }

    public ICollectiveWork StartBroadcast(Tensor tensor, int root)
    {
        CollectiveArguments.Broadcast(tensor, root, 1, tensor.device_type);
        return CompletedWork.Instance;
    }

    public void Barrier() { }

    public void Abort(string reason) { }

    public void Dispose() { }

    sealed class CompletedWork : ICollectiveWork
    {
        public static readonly CompletedWork Instance = new();
        public bool IsCompleted => true;
        public void Wait() { }
    }
}
