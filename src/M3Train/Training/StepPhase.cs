namespace M3Train.Training;

/// <summary>
/// The parts of a training step that <see cref="M3TrainStep"/> reports to its phase callback, in order.
/// With GradCache (sub-batches) the second encoding of each sub-batch happens during <see cref="Backward"/>,
/// as the recomputation of checkpointed layers does.
/// </summary>
public enum StepPhase
{
    /// <summary>Host batch to device tensors.</summary>
    Input,
    /// <summary>Encoding queries and passages, scores and the loss.</summary>
    Forward,
    /// <summary>Gradients of the loss with respect to every trainable parameter.</summary>
    Backward,
    /// <summary>Gradient reduction over replicas, clipping, the AdamW update, zeroing gradients.</summary>
    Optimizer,
}
