using Xunit;

namespace M3Train.Tests.Training;

/// <summary>
/// Tests that change process-wide state other tests depend on: libtorch's thread count, the global random
/// generator (seeding, dropout) and the peak-RSS counter. They run alone, so tests that replay random streams
/// (GradCache's dropout replay) never see them interleaved.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideTorchCollection
{
    public const string Name = "Process-wide torch state";
}
