using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Training;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

/// <summary>
/// Fault injection around an objective: at micro-step <paramref name="microStep"/> replica <paramref name="replica"/>
/// fails in its own thread of the replica group (as an out-of-memory or driver error would) before the step runs.
/// </summary>
internal sealed class FailingReplicaObjective(ITrainingObjective inner, IReplicaGroup<nn.Module> replicas, int replica, long microStep)
    : ITrainingObjective
{
    public IReadOnlyList<TrainedModule> Modules => inner.Modules;

    public ObjectiveStep Step(IReadOnlyList<TrainBatch> batches, StepContext context)
    {
        if (context.MicroStep == microStep)
            replicas.RunOnAll(r => r == replica
                ? throw new InvalidOperationException($"injected failure in replica {r} at micro-step {context.MicroStep}")
                : 0);
        return inner.Step(batches, context);
    }
}
