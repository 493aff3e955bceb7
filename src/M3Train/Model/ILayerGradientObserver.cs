namespace M3Train.Model;

/// <summary>
/// Told when a checkpointed encoder layer runs with a graph (<see cref="Recorded"/>) and when the backward of that run
/// has put its gradients into the layer's parameters (<see cref="Accumulated"/>). <see cref="LayerCheckpoint"/>
/// recomputes and back-propagates the layer inside its own backward, so at that moment the run's share of the layer's
/// gradient is complete: data-parallel training starts averaging a layer's gradients there, while the layers below it
/// are still in backward.
/// </summary>
/// <remarks>
/// <see cref="Accumulated"/> is called by the autograd engine (on CUDA from its own thread), where an exception cannot
/// unwind: an observer keeps its errors and reports them later.
/// </remarks>
public interface ILayerGradientObserver
{
    /// <summary>A forward of <paramref name="layer"/> that will be back-propagated (grad enabled, checkpointed).</summary>
    void Recorded(XlmRobertaLayer layer);

    /// <summary>The backward of one recorded run of <paramref name="layer"/> is done: its parameters hold that run's gradient.</summary>
    void Accumulated(XlmRobertaLayer layer);
}
