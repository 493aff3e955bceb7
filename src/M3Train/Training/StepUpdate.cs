using M3Train.DataParallel;
using M3Train.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The end of every training step, once the micro-batches' gradients have accumulated: shared by
/// <see cref="Trainer"/> and <c>m3train bench</c>, so the benchmark times the trainer's own update.
/// Replica gradients are summed into replica 0, clipped on the device, and the loss and gradient norm are read
/// back in one copy (the step's only host sync: a non-finite step is skipped, not applied); then AdamW steps,
/// gradients are cleared and the new weights go to the other replicas.
/// </summary>
public static class StepUpdate
{
    /// <param name="loss">The step's loss (mean over its micro-batches), a 0-d device tensor.</param>
    public static StepUpdateResult Apply(ReplicaSet<M3Model> replicas, ITrainingObjective objective, AdamW optimizer,
        IReadOnlyList<Parameter> trainable, double maxGradNorm, Tensor loss)
    {
        using var scope = NewDisposeScope();
        replicas.ReduceGradients();
        objective.ReduceGradients();
        var gradNorm = GradientClipper.ClipByGlobalNorm(trainable, maxGradNorm);
        var check = stack([loss.to(float32), gradNorm.to(loss.device).to(float32)]).cpu();
        float lossValue = check[0].item<float>(), normValue = check[1].item<float>();
        if (!float.IsFinite(lossValue) || !float.IsFinite(normValue))
        {
            optimizer.zero_grad();
            return new StepUpdateResult(lossValue, normValue, Applied: false);
        }
        optimizer.step();
        optimizer.zero_grad();
        replicas.BroadcastWeights();
        objective.BroadcastWeights();
        return new StepUpdateResult(lossValue, normValue, Applied: true);
    }
}
