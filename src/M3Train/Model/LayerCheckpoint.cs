using System.Collections.Concurrent;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace M3Train.Model;

/// <summary>
/// Activation checkpointing for one encoder layer (TorchSharp has no <c>torch.utils.checkpoint</c>):
/// forward keeps only the layer's input; backward re-runs the layer with grad enabled on a detached copy,
/// after re-seeding dropout exactly as in forward, and back-propagates through the recomputed graph. When that
/// nested backward returns, the layer's parameters hold this run's gradient, which the model's
/// <see cref="ILayerGradientObserver"/> is told (TorchSharp has no gradient hooks on parameters).
/// </summary>
internal sealed class LayerCheckpoint : MultiTensorFunction<LayerCheckpoint>
{
    public override string Name => nameof(LayerCheckpoint);

    /// <summary>
    /// Runs <paramref name="layer"/> on hidden [B, L, D] with keyMask [B, 1, 1, L] or null. The input
    /// gradients handed to autograd are queued on <paramref name="spent"/>; the owner disposes them on its
    /// next forward (autograd copies them when backward returns, and the backward thread has no scope
    /// that outlives the call). <paramref name="observer"/> hears of the run and of its backward.
    /// </summary>
    public static Tensor Run(XlmRobertaLayer layer, Tensor hidden, Tensor? keyMask, long? seed, ConcurrentQueue<Tensor> spent,
        ILayerGradientObserver? observer = null)
    {
        // A custom function records a backward node only if some tensor input requires grad; hidden states
        // of a frozen embedding do not, so an anchor that does keeps the layer's own parameters trainable.
        Tensor? anchor = !hidden.requires_grad && layer.parameters().Any(p => p.requires_grad)
            ? zeros(0, requires_grad: true)
            : null;
        var output = apply(layer, hidden, keyMask!, seed!, spent, observer!, anchor!)[0];
        if (output.requires_grad) observer?.Recorded(layer);
        return output;
    }

    public override List<Tensor> forward(AutogradContext ctx, params object[] vars)
    {
        var layer = (XlmRobertaLayer)vars[0];
        var hidden = (Tensor)vars[1];
        var keyMask = vars[2] as Tensor;
        var seed = vars[3] as long?;
        ctx.save_for_backward([hidden, keyMask!]);
        ctx.save_data("layer", layer);
        ctx.save_data("seed", seed!);
        ctx.save_data("spent", vars[4]);
        ctx.save_data("observer", vars[5]);
        ctx.save_data("hiddenNeedsGrad", hidden.requires_grad);
        if (seed is long s) DropoutReplay.Seed(s, hidden.device);
        return [layer.forward(hidden, keyMask)];
    }

    /// <summary>
    /// Called by the autograd engine from native code, where a managed exception cannot unwind (the
    /// process hangs): a failed recompute (e.g. out of memory) ends the process with its message instead.
    /// </summary>
    public override List<Tensor> backward(AutogradContext ctx, List<Tensor> gradOutputs)
    {
        try
        {
            return Recompute(ctx, gradOutputs);
        }
        catch (Exception e)
        {
            // An exception cannot unwind through libtorch's autograd callback, so the process ends here; say why and what to change.
            string message = "Activation checkpointing: recomputing an encoder layer in backward failed" +
                (e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
                    ? " (out of memory: lower data.batch_sizes or data.tokens_per_batch, set or lower train.sub_batch_size, or lower data.passage_max_len; m3train probe-batch finds sizes that fit; the last checkpoint is intact, resume with --resume latest)"
                    : "");
            Log.Fatal(e, message);
            Log.CloseAndFlush();
            Environment.FailFast($"{message}: {e.Message}", e);
            throw;
        }
    }

    static List<Tensor> Recompute(AutogradContext ctx, List<Tensor> gradOutputs)
    {
        var layer = (XlmRobertaLayer)ctx.get_data("layer");
        var seed = ctx.get_data("seed") as long?;
        var spent = (ConcurrentQueue<Tensor>)ctx.get_data("spent");
        bool hiddenNeedsGrad = (bool)ctx.get_data("hiddenNeedsGrad");
        var saved = ctx.get_saved_variables();

        Tensor? inputGrad = null;
        using (var scope = NewDisposeScope())
        using (enable_grad())
        using (seed is null ? null : DropoutReplay.Seeding(saved[0].device))
        {
            var input = saved[0].detach().requires_grad_(true);
            if (seed is long s) DropoutReplay.Seed(s, input.device);
            var output = layer.forward(input, saved[1]);
            autograd.backward([output], [gradOutputs[0]]);
            if (hiddenNeedsGrad)
            {
                inputGrad = input.grad!;
                scope.Detach(inputGrad);
                spent.Enqueue(inputGrad);
            }
        }
        foreach (var t in saved) t?.Dispose();
        foreach (var t in gradOutputs) t?.Dispose();
        (ctx.get_data("observer") as ILayerGradientObserver)?.Accumulated(layer);
        return [null!, inputGrad!, null!, null!, null!, null!, null!];
    }
}
