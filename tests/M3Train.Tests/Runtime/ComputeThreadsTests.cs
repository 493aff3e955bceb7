using M3Train.Runtime;
using M3Train.Tests.Checkpoints;
using TorchSharp;
using Xunit;

namespace M3Train.Tests.Runtime;

[Collection(SerilogCaptureCollection.Name)]
public class ComputeThreadsTests
{
    [Fact]
    public void TheDefaultLeavesACoreToTheInterOpPoolAndOneToEachLoaderAndNeverFallsBelowOne()
    {
        int cores = Environment.ProcessorCount;
        Assert.Equal(Math.Max(1, cores - 1), ComputeThreads.Default(hostThreads: 0));
        Assert.Equal(Math.Max(1, cores - 2), ComputeThreads.Default(hostThreads: 1));
        Assert.Equal(1, ComputeThreads.Default(hostThreads: cores + 8));
    }

    [Fact]
    public void RanksOnOneMachineEachTakeTheirShareOfTheCores()
    {
        int cores = Environment.ProcessorCount;
        Assert.Equal(Math.Max(1, cores / 2 - 2), ComputeThreads.Default(hostThreads: 1, ranksOnMachine: 2));
        Assert.Equal(Math.Max(1, cores / 4 - 2), ComputeThreads.Default(hostThreads: 1, ranksOnMachine: 4));
        Assert.Equal(1, ComputeThreads.Default(hostThreads: 0, ranksOnMachine: cores + 1));
        Assert.True(ComputeThreads.Default(hostThreads: 1, ranksOnMachine: 2) * 2 <= Math.Max(2, cores), "two ranks together ask for no more threads than the cores");

        int before = torch.get_num_threads();
        try
        {
            using var log = new LogCapture();
            int chosen = ComputeThreads.Apply(null, hostThreads: 1, "train.threads", ranksOnMachine: 2);
            Assert.Equal(ComputeThreads.Default(1, 2), chosen);
            var line = Assert.Single(log.Messages, m => m.StartsWith("Threads:", StringComparison.Ordinal));
            Assert.Contains("default: cores / ranks - inter-op - loaders", line);
            Assert.Contains("shared by 2 ranks", line);
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void ApplySetsLibtorchsThreadsAndLogsTheChoiceAndWhereToChangeIt()
    {
        int before = torch.get_num_threads();
        try
        {
            using var log = new LogCapture();
            Assert.Equal(2, ComputeThreads.Apply(2, hostThreads: 1, "train.threads"));
            Assert.Equal(2, torch.get_num_threads());
            int chosen = ComputeThreads.Apply(null, hostThreads: 1, "train.threads");
            Assert.Equal(ComputeThreads.Default(1), chosen);
            Assert.Equal(chosen, torch.get_num_threads());
            Assert.Equal(ComputeThreads.InterOp, torch.get_num_interop_threads());

            var lines = log.Messages.Where(m => m.StartsWith("Threads:", StringComparison.Ordinal)).ToList();
            Assert.Equal(2, lines.Count);
            Assert.Contains("2 intra-op (train.threads)", lines[0]);
            Assert.Contains($"{chosen} intra-op (default: cores - inter-op - loaders; train.threads to change)", lines[1]);
            Assert.Contains($"on {Environment.ProcessorCount} cores", lines[1]);
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public void ACountBelowOneIsRefusedNamingWhereItCameFrom()
    {
        var e = Assert.Throws<M3TrainException>(() => ComputeThreads.Apply(0, hostThreads: 0, "--threads"));
        Assert.Contains("--threads 0", e.Message);
    }
}
