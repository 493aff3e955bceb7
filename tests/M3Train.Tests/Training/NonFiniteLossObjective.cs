using M3Train.Data;
using M3Train.Training;

namespace M3Train.Tests.Training;

/// <summary>Fault injection around an objective: the micro-steps <paramref name="at"/> picks report a NaN loss, as a diverging step would.</summary>
internal sealed class NonFiniteLossObjective(ITrainingObjective inner, Func<long, bool> at) : ITrainingObjective
{
    public IReadOnlyList<TrainedModule> Modules => inner.Modules;

    public ObjectiveStep Step(TrainBatch batch, StepContext context)
    {
        var step = inner.Step(batch, context);
        return at(context.MicroStep) ? step with { Loss = step.Loss * float.NaN } : step;
    }
}
