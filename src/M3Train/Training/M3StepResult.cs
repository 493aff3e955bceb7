using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// What one <see cref="M3TrainStep.Run(IReadOnlyList{IReadOnlyList{Data.TrainBatch}}, double, Action{StepPhase}?)"/> returns,
/// all 0-d fp32 tensors on the master device and still unread, so the step has no host sync; reading one
/// (<c>item&lt;float&gt;()</c>) waits for the step to finish, which is what logging every N steps should do.
/// </summary>
/// <param name="Losses">The loss and its parts (<c>loss</c>, <c>loss_dense</c>, ...; names as in <c>metrics.jsonl</c>), means over the micro-batches.</param>
/// <param name="GradNorm">Global gradient norm before clipping.</param>
public sealed record M3StepResult(IReadOnlyDictionary<string, Tensor> Losses, Tensor GradNorm) : IDisposable
{
    public Tensor Loss => Losses["loss"];

    public void Dispose()
    {
        foreach (var t in Losses.Values) t.Dispose();
        GradNorm.Dispose();
    }
}
