using M3Train.DataParallel;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.DataParallel;

public class ReplicaSetTests
{
    static ReplicaSet<nn.Module<Tensor, Tensor>> TwoCpuReplicas(int bucketMegabytes = 25)
    {
        torch.manual_seed(3);
        var a = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2));
        torch.manual_seed(4);
        var b = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2));
        return new ReplicaSet<nn.Module<Tensor, Tensor>>([a, b], [CPU, CPU], bucketMegabytes);
    }

    [Fact]
    public void ReplicasStartWithTheMastersWeights()
    {
        var set = TwoCpuReplicas();
        Assert.True(set.WeightsIdentical());
        using (no_grad()) set.Replicas[1].parameters().First().add_(1e-3f);
        Assert.False(set.WeightsIdentical());
    }

    [Theory]
    [InlineData(25)]
    [InlineData(0)] // every tensor its own bucket
    public void ReducedGradientIsTheSumOverReplicas(int bucketMegabytes)
    {
        var set = TwoCpuReplicas(bucketMegabytes);
        using var inputs = new Generator(5, CPU);
        var x = randn(8, 5, generator: inputs);
        var full = set.Master.forward(x).pow(2).sum();
        full.backward();
        var expected = set.Master.parameters().Select(p => p.grad!.clone()).ToList();
        set.Master.zero_grad();

        var halves = new[] { x[TensorIndex.Slice(0, 4)], x[TensorIndex.Slice(4, 8)] };
        set.RunOnAll(r => { set.Replicas[r].forward(halves[r]).pow(2).sum().backward(); return 0; });
        set.ReduceGradients();

        foreach (var (got, want) in set.Master.parameters().Select(p => p.grad!).Zip(expected))
            Assert.True(got.allclose(want, 1e-5, 1e-6));
        Assert.All(set.Replicas[1].parameters(), p => Assert.True(p.grad is null || p.grad.abs().sum().item<float>() == 0));
    }

    [Fact]
    public void AFailingReplicaStopsTheStepWithItsCause()
    {
        var set = TwoCpuReplicas();
        var e = Assert.Throws<ReplicaFailedException>(() =>
            set.RunOnAll(r => r == 1 ? throw new InvalidOperationException("out of memory (injected)") : 0));
        Assert.Equal(1, e.Replica);
        Assert.Contains("out of memory (injected)", e.Message);
    }
}
