using Xunit;

namespace M3Train.Tests.Model;

/// <summary>Tests that compare runs of seeded dropout: they draw from the process-wide default generator, so no other test may draw meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRandomCollection
{
    public const string Name = "Global random generator";
}
