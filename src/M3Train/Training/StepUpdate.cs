using M3Train.DataParallel;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The end of every training step, once the micro-batches' gradients have accumulated: shared by
/// <see cref="Trainer"/> and <c>m3train bench</c>, so the benchmark times the trainer's own update.
/// The gradients are averaged over the ranks (<see cref="GradientBuckets"/>; nothing to do in a world of one), unscaled
/// (fp16's <see cref="LossScaler"/>), clipped on the device, and the loss and gradient norm are read back in one copy (the
/// step's only host sync: a non-finite step is skipped, not applied); then AdamW steps and the gradients are cleared.
/// Every rank reaches the same decision, fp16 overflows included: the check reads the averaged gradients, identical
/// everywhere (an inf or NaN on one rank is in every rank's average), and the loss is the caller's mean over the ranks.
/// </summary>
public static class StepUpdate
{
    /// <param name="gradients">Averages the gradients over the ranks.</param>
    /// <param name="optimizer">AdamW over the trainable parameters.</param>
    /// <param name="trainable">Those parameters, for clipping.</param>
    /// <param name="maxGradNorm">The global norm gradients are clipped to (0: none).</param>
    /// <param name="loss">The step's loss (mean over its micro-batches and the ranks), a 0-d device tensor.</param>
    /// <param name="scaler">fp16's loss scaler, whose scale the gradients carry; null: they carry none.</param>
    public static StepUpdateResult Apply(GradientBuckets gradients, AdamW optimizer,
        IReadOnlyList<Parameter> trainable, double maxGradNorm, Tensor loss, LossScaler? scaler = null)
    {
        using var scope = NewDisposeScope();
        gradients.Reduce();
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
        return new StepUpdateResult(lossValue, normValue, Applied: true);
    }
}
