namespace M3Train.Training.Losses;

/// <summary>
/// Which gradient the dense embeddings get from a loss with cross-device negatives (several ranks, every rank's queries
/// scored against every rank's passages). Config values: <c>exact</c>, <c>local</c>. See <see cref="CrossDeviceDenseScores"/>.
/// </summary>
public enum CrossDeviceGradient
{
    /// <summary>
    /// The gradient of the global batch's loss: the gradient of the gathered embeddings is summed over the ranks and each
    /// rank back-propagates its own rows of it, so W ranks with B queries each train exactly as one rank with W·B.
    /// </summary>
    Exact,

    /// <summary>
    /// FlagEmbedding's: each rank back-propagates only what its own loss gives its own embeddings (the other ranks'
    /// gathered rows are constants), then gradients are averaged, so the dense loss over the global batch contributes
    /// 1/W of its exact gradient. For runs that must reproduce the reference.
    /// </summary>
    Local,
}
