using Xunit;

namespace M3Train.Tests.Training;

/// <summary>
/// Tests that seed torch's process-wide CPU generator and then rely on the draws that follow (dropout replay by
/// re-seeding): any test running beside them that draws from the same generator would shift their masks. They run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRandomCollection
{
    public const string Name = "global random generator";
}
