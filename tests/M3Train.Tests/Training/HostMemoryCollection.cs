using Xunit;

namespace M3Train.Tests.Training;

/// <summary>
/// Tests that measure the process's resident set (peak RSS after a reset): memory that tests running beside them
/// allocate or free moves those figures, so they run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostMemoryCollection
{
    public const string Name = "host memory";
}
