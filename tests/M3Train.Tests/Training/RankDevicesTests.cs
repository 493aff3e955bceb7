using M3Train.Distributed;
using M3Train.Training;
using Xunit;
using TorchSharp;

namespace M3Train.Tests.Training;

/// <summary>Several devices mean several processes: there is no in-process replication to fall back on.</summary>
public class RankDevicesTests
{
    static LaunchEnvironment Rank(int rank, int localWorld) => new()
    {
        Launcher = Launcher.M3Launch, Rank = rank, WorldSize = localWorld, LocalRank = rank, LocalWorldSize = localWorld,
    };

    [Fact]
    public void EachListedDeviceIsOneProcessAndEachRankTakesItsLocalRanksEntry()
    {
        var train = new TrainConfig { Devices = ["cpu", "cpu", "cpu"] };
        Assert.Equal(3, RankDevices.ProcessesFor(train));
        Assert.Equal(1, RankDevices.ProcessesFor(new TrainConfig()));
        Assert.Equal(DeviceType.CPU, RankDevices.For(train, Rank(2, 3)).type);
    }

    [Fact]
    public void ARankOfAJobWithAnotherNumberOfProcessesThanDevicesIsToldHowToStartIt()
    {
        var e = Assert.Throws<M3TrainException>(() => RankDevices.For(new TrainConfig { Devices = ["cpu", "cpu"] }, Rank(0, 3)));
        Assert.Contains("train.devices lists 2 devices (cpu, cpu) but this machine runs 3 processes: one process per device", e.Message);
        Assert.Contains("m3train launch", e.Message);
    }

    [Fact]
    public void TrainingOnSeveralDevicesInsideOneProcessIsRefusedNamingTheLaunchers()
    {
        using var run = new TinyRun();
        var config = run.Config(maxSteps: 1);
        config = config with { Train = config.Train with { Devices = ["cpu", "cpu"] } };
        var e = Assert.Throws<M3TrainException>(() => UnifiedFinetuneRecipe.Run(config));
        Assert.Contains("train.devices asks for 2 devices: data parallelism runs one process per device", e.Message);
        Assert.Contains("m3train launch", e.Message);
        Assert.False(Directory.Exists(run.Output), "nothing was written before the refusal");
    }
}
