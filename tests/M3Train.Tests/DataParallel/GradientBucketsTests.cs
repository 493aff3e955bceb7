using M3Train.DataParallel;
using M3Train.Tests.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.DataParallel;

public class GradientBucketsTests
{
    /// <summary>Rank r's gradient of parameter i: small integers, so every average is exact.</summary>
    static Tensor Gradient(int i, int rank, long[] shape) => (arange(shape.Aggregate(1L, (a, b) => a * b)) % 7 + 3 * rank + i).to(float32).view(shape);

    static readonly long[][] Shapes = [[300, 100], [7], [50, 40], [1000], [3, 3]];

    [Theory]
    [InlineData(2, 1L << 30)]
    [InlineData(3, 100_000)]
    [InlineData(3, 8)]
    public void EveryRankEndsWithTheAverageOfTheRanksGradientsWhateverTheBucketSize(int world, long bucketBytes)
    {
        var results = LocalJob.Results(world, context =>
        {
            var group = new DataParallelGroup(context.Collectives, CPU);
            var parameters = Shapes.Select(s => new Parameter(zeros(s))).ToList();
            for (int i = 0; i < parameters.Count; i++) parameters[i].grad = Gradient(i, group.Rank, Shapes[i]);
            using var buckets = new GradientBuckets(group, parameters, [], bucketBytes);
            buckets.Reduce();
            return (buckets.BucketCount, Grads: parameters.Select(p => p.grad!.clone()).ToList());
        });
        // 120 KB, 28 B, 8 KB, 4 KB, 36 B, bucketed last first: all in one; the four small ones and the large one alone; one each.
        Assert.Equal(bucketBytes switch { 1L << 30 => 1, 100_000 => 2, _ => 5 }, results[0].BucketCount);
        for (int i = 0; i < Shapes.Length; i++)
        {
            var mean = Enumerable.Range(0, world).Select(r => Gradient(i, r, Shapes[i])).Aggregate((a, b) => a + b) / world;
            foreach (var (_, grads) in results)
                Assert.True(grads[i].equal(mean).all().item<bool>(), $"parameter {i}");
        }
    }

    [Fact]
    public void AParameterNoRankHasAGradientForKeepsNoneAndOneOnlySomeRanksHaveIsAveragedWithZeros()
    {
        var results = LocalJob.Results(2, context =>
        {
            var group = new DataParallelGroup(context.Collectives, CPU);
            var used = new Parameter(zeros(4));
            var unused = new Parameter(zeros(4));
            var onlyRank1 = new Parameter(zeros(4));
            used.grad = full(4, 2f + group.Rank);
            if (group.Rank == 1) onlyRank1.grad = full(4, 6f);
            using var buckets = new GradientBuckets(group, [used, unused, onlyRank1], []);
            buckets.Reduce();
            return (Used: used.grad!.clone(), Unused: unused.grad, OnlyRank1: onlyRank1.grad?.clone());
        });
        foreach (var (used, unused, onlyRank1) in results)
        {
            Assert.True(used.equal(full(4, 2.5f)).all().item<bool>());
            Assert.Null(unused);
            Assert.True(onlyRank1!.equal(full(4, 3f)).all().item<bool>());
        }
    }

    [Fact]
    public void AWorldOfOneLeavesTheGradientsAlone()
    {
        var p = new Parameter(zeros(3)) { grad = tensor(new[] { 1f, 2f, 3f }) };
        using var buckets = new GradientBuckets(DataParallelGroup.Alone(CPU), [p], []);
        buckets.Reduce();
        Assert.Equal(0, buckets.BucketCount);
        Assert.Equal([1f, 2f, 3f], p.grad!.data<float>().ToArray());
    }
}
