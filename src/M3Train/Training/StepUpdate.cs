using M3Train.DataParallel;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The end of every training step, once the micro-batches' gradients have accumulated: shared by
/// <see cref="Trainer"/> and <c>m3train bench</c>, so the benchmark times the trainer's own update.
/// Each replica group's gradients are summed into its master, unscaled (fp16's <see cref="LossScaler"/>), clipped on the
/// device, and the loss and gradient norm are read back in one copy (the step's only host sync: a non-finite step is
/// skipped, not applied); then AdamW steps, gradients are cleared and the new weights go to the other replicas.
/// </summary>
public static class StepUpdate
{
    /// <param name="groups">The model's replicas, then those of the modules the objective trains beside it.</param>
    /// <param name="optimizer">AdamW over the masters' trainable parameters.</param>
    /// <param name="trainable">Those parameters, for clipping.</param>
    /// <param name="maxGradNorm">The global norm gradients are clipped to (0: none).</param>
    /// <param name="loss">The step's loss (mean over its micro-batches), a 0-d device tensor.</param>
    /// <param name="scaler">fp16's loss scaler, whose scale the gradients carry; null: they carry none.</param>
    public static StepUpdateResult Apply(IReadOnlyList<IReplicaGroup<nn.Module>> groups, AdamW optimizer,
        IReadOnlyList<Parameter> trainable, double maxGradNorm, Tensor loss, LossScaler? scaler = null)
    {
        using var scope = NewDisposeScope();
        foreach (var group in groups) group.ReduceGradients();
        scaler?.Unscale(trainable);
        var gradNorm = GradientClipper.ClipByGlobalNorm(trainable, maxGradNorm);
        var check = stack([loss.to(float32), gradNorm.to(loss.device).to(float32)]).cpu();
        float lossValue = check[0].item<float>(), normValue = check[1].item<float>();
        if (!float.IsFinite(lossValue) || !float.IsFinite(normValue))
        {
            optimizer.zero_grad();
            bool overflow = scaler is not null && float.IsFinite(lossValue) && scaler.Backoff();
            return new StepUpdateResult(lossValue, normValue, Applied: false, Overflow: overflow);
        }
        scaler?.Grew();
        optimizer.step();
        optimizer.zero_grad();
        foreach (var group in groups) group.BroadcastWeights();
        return new StepUpdateResult(lossValue, normValue, Applied: true);
    }
}
