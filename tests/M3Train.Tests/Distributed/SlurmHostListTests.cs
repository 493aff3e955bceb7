using M3Train.Distributed;
using Xunit;

namespace M3Train.Tests.Distributed;

public class SlurmHostListTests
{
    [Theory]
    [InlineData("gpu[01-03,07],cpu5", "gpu01 gpu02 gpu03 gpu07 cpu5")]
    [InlineData("node7", "node7")]
    [InlineData("a[8-11]", "a8 a9 a10 a11")]
    [InlineData("n[098-101]", "n098 n099 n100 n101")]
    [InlineData("rack[1-2]-n[1,3]", "rack1-n1 rack1-n3 rack2-n1 rack2-n3")]
    [InlineData("x[1]y,z", "x1y z")]
    [InlineData(" h1 , h2 ", "h1 h2")]
    public void ExpandsCompressedListsInSlurmOrder(string list, string expected)
    {
        Assert.Equal(expected.Split(' '), SlurmHostList.Expand(list, "SLURM_JOB_NODELIST"));
    }

    [Fact]
    public void TheFirstHostIsWhereTaskZeroRuns()
    {
        Assert.Equal("gpu01", SlurmHostList.First("gpu[01-03,07],cpu5", "SLURM_STEP_NODELIST"));
    }

    [Theory]
    [InlineData("gpu[01-03", "not closed")]
    [InlineData("gpu01]", "without '['")]
    [InlineData("gpu[[1]]", "nested")]
    [InlineData("gpu[3-1]", "ends before it starts")]
    [InlineData("gpu[a-b]", "neither a number nor a range")]
    [InlineData("gpu[1-2-3]", "neither a number nor a range")]
    [InlineData("a,,b", "empty entry")]
    [InlineData("", "empty entry")]
    public void RejectsMalformedListsNamingTheVariable(string list, string why)
    {
        var error = Assert.Throws<DistributedException>(() => SlurmHostList.Expand(list, "SLURM_STEP_NODELIST"));
        Assert.Contains("SLURM_STEP_NODELIST", error.Message);
        Assert.Contains(why, error.Message);
    }
}
