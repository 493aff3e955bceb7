namespace M3Train.Training;

/// <summary>
/// The parts of a training step that <c>m3train bench</c> times separately, in order. With GradCache (sub-batches)
/// the second encoding of each sub-batch happens during <see cref="Backward"/>, as the recomputation of
/// checkpointed layers does.
/// </summary>
public enum StepPhase
{
    /// <summary>Host batch to the device, encoding queries and passages, scores and the loss.</summary>
    Forward,
    /// <summary>Gradients of the loss with respect to every trainable parameter.</summary>
    Backward,
    /// <summary><see cref="StepUpdate"/>: gradient averaging over ranks, clipping, the finite check, AdamW, zeroing gradients.</summary>
    Optimizer,
}
