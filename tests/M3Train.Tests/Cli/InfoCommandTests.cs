using Xunit;

namespace M3Train.Tests.Cli;

[Trait("Category", "Slow")]
public class InfoCommandTests
{
    [Fact]
    public void InfoNamesTheBackendAndSaysTheBuildKeepsNativeArgumentsAlive()
    {
        var (exit, stdout, stderr) = M3TrainProcess.Run("info");
        Assert.True(exit == 0, stderr);
        Assert.Contains($"backend          {M3Train.Runtime.BuildInfo.TorchBackend}", stdout);
        Assert.Contains("native args      kept alive through libtorch calls", stdout);
    }
}
