using System.CommandLine;
using M3Train.Cli;
using M3Train.Tests.Training;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Cli;

public class TrainingOptionsTests
{
    static readonly string GpuConfig = TinyRun.Repo("configs", "bge-m3-finetune.yaml");

    /// <summary>The run config a finetune command line resolves to (nothing is trained).</summary>
    static RunConfig Resolve(params string[] args)
    {
        var options = new TrainingOptions();
        var command = new Command("finetune");
        foreach (var option in options.All) command.Add(option);
        var parse = command.Parse(args);
        Assert.Empty(parse.Errors);
        return options.Read(parse, "finetune").Config;
    }

    [Fact]
    public void TheGpuConfigNamesDevicesAndDeviceCpuOnTheCommandLineWins()
    {
        Assert.Equal(["cuda"], Resolve("--config", GpuConfig).Train.Devices);

        var train = Resolve("--config", GpuConfig, "--device", "cpu").Train;
        Assert.Equal("cpu", train.Device);
        Assert.Empty(train.Devices);
    }

    [Fact]
    public void SetTrainDeviceAlsoWinsOverTheFilesDevicesUnlessDevicesIsSetToo()
    {
        var train = Resolve("--config", GpuConfig, "--set", "train.device=cpu").Train;
        Assert.Equal(("cpu", 0), (train.Device, train.Devices.Count));

        train = Resolve("--config", GpuConfig, "--set", "train.device=cpu", "--set", "train.devices=[cpu,cpu]").Train;
        Assert.Equal(["cpu", "cpu"], train.Devices);
    }

    [Fact]
    public void DevicesOnTheCommandLineReplaceTheFiles()
    {
        Assert.Equal(["cpu", "cpu"], Resolve("--config", GpuConfig, "--devices", "cpu,cpu").Train.Devices);
    }

    [Fact]
    public void DeviceAndDevicesTogetherAreRefused()
    {
        var e = Assert.Throws<M3TrainException>(() => Resolve("--config", GpuConfig, "--device", "cpu", "--devices", "cpu,cpu"));
        Assert.Contains("--device cpu and --devices cpu,cpu", e.Message);
    }

    [Fact]
    public void ThreadsSetsTrainThreadsAndZeroIsAUsageError()
    {
        Assert.Null(Resolve("--config", GpuConfig).Train.Threads);
        Assert.Equal(3, Resolve("--config", GpuConfig, "--threads", "3").Train.Threads);

        var (code, error) = CliRun.Run("finetune", "--config", GpuConfig, "--threads", "0");
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains("--threads must be at least 1", error);
    }
}
