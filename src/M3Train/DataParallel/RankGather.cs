using M3Train.Distributed;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace M3Train.DataParallel;

/// <summary>
/// all_gather as an autograd function: forward concatenates every rank's [B, ...] into [W·B, ...] in rank order;
/// backward hands this rank the rows of its own slot from the gradient of the gathered tensor — summed over ranks first
/// (the exact gradient: every rank's loss reaches every slot) or as it is (FlagEmbedding's own-slot gradient).
/// </summary>
/// <remarks>
/// The exact backward is a collective inside backward, so every rank's backward must reach it in the same order (ranks
/// run the same graph). The autograd engine calls backward from native code, where an exception cannot unwind: a
/// failed all-reduce gives a zero gradient and is kept on the group, which rethrows it when the backward has returned.
/// </remarks>
internal sealed class RankGather : MultiTensorFunction<RankGather>
{
    public override string Name => nameof(RankGather);

    public static Tensor Run(DataParallelGroup group, Tensor local, bool exactGradient)
    {
        while (group.SpentGradients.TryDequeue(out var spent)) spent.Dispose();
        return apply(group, local, exactGradient)[0];
    }

    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var group = (DataParallelGroup)vars[0];
        var local = (Tensor)vars[1];
        ctx.save_data("group", group);
        ctx.save_data("exact", (bool)vars[2]);
        ctx.save_data("rows", local.shape[0]);
        using var contiguous = local.contiguous();
        return [group.Collectives.AllGather(contiguous)];                                  // [W·B, ...]
    }

    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> gradOutputs)
    {
        var group = (DataParallelGroup)ctx.get_data("group");
        bool exact = (bool)ctx.get_data("exact");
        long rows = (long)ctx.get_data("rows");
        var gathered = gradOutputs[0];                                                       // [W·B, ...]
        Tensor slot;
        using (var scope = NewDisposeScope())
        {
            var all = gathered.contiguous().clone();
            if (exact)
            {
                try
                {
                    group.Collectives.AllReduce(all, ReduceOp.Sum);
                }
                catch (Exception e)
                {
                    group.BackwardFailed(e);
                    all.zero_();
                }
            }
            slot = all[TensorIndex.Slice(group.Rank * rows, (group.Rank + 1) * rows)].clone();   // [B, ...]
            scope.Detach(slot);
        }
        group.SpentGradients.Enqueue(slot);
        foreach (var t in gradOutputs) t?.Dispose();
        return [null!, slot, null!];
    }
}
