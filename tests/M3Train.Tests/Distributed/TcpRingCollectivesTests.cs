using System.Diagnostics;
using M3Train.Distributed;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Distributed;

public class TcpRingCollectivesTests
{
    /// <summary>Rank r's all-reduce input: small integers, so the exact sum is known in every dtype.</summary>
    static Tensor Pattern(long n, int rank, ScalarType dtype) => ((arange(n, ScalarType.Int64) + rank) % 3).to(dtype);

    static Tensor ExpectedSum(long n, int world, ScalarType dtype)
    {
        var sum = zeros(n, ScalarType.Int64);
        for (int r = 0; r < world; r++) sum += (arange(n, ScalarType.Int64) + r) % 3;
        return sum.to(dtype);
    }

    static byte[] Bytes(Tensor t) => t.bytes.ToArray();

    /// <summary>Same dtype, shape and bits.</summary>
    static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.bytes.SequenceEqual(b.bytes);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void AllReduceSumsExactlyInEveryDtype(int world)
    {
        ScalarType[] dtypes = [ScalarType.Float32, ScalarType.Float64, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Int32, ScalarType.Int64];
        var results = LocalJob.Results(world, context => dtypes.Select(dtype =>
        {
            // 1001 elements: segments of unequal length on 2 and 3 ranks.
            var t = Pattern(1001, context.Rank, dtype);
            context.Collectives.AllReduce(t, ReduceOp.Sum);
            return t;
        }).ToList());
        for (int d = 0; d < dtypes.Length; d++)
            for (int r = 0; r < world; r++)
                Assert.True(Same(results[r][d], ExpectedSum(1001, world, dtypes[d])), $"rank {r} {dtypes[d]}");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void AverageAndLargeTensorsGiveBitIdenticalResultsOnEveryRank(int world)
    {
        // 1.5 M floats (6 MB): several 4 MB chunks per segment on 2 ranks, unequal segments on 3.
        const long n = 1_500_007;
        var results = LocalJob.Results(world, context =>
        {
            var t = randn(n, generator: new Generator(seed: 100 + (ulong)context.Rank));
            context.Collectives.AllReduce(t, ReduceOp.Average);
            var half = randn(n, generator: new Generator(seed: 200 + (ulong)context.Rank)).to(ScalarType.BFloat16);
            context.Collectives.AllReduce(half, ReduceOp.Sum);
            return (Bytes(t), Bytes(half), t);
        });
        var mean = Enumerable.Range(0, world).Select(r => randn(n, generator: new Generator(seed: 100 + (ulong)r))).Aggregate((a, b) => a + b) / world;
        Assert.True(results[0].t.allclose(mean, rtol: 1e-5, atol: 1e-6));
        for (int r = 1; r < world; r++)
        {
            Assert.Equal(results[0].Item1, results[r].Item1);
            Assert.Equal(results[0].Item2, results[r].Item2);
        }
        // The reduction order is fixed by the world size: a second job gives the same bits.
        var again = LocalJob.Results(world, context =>
        {
            var t = randn(n, generator: new Generator(seed: 100 + (ulong)context.Rank));
            context.Collectives.AllReduce(t, ReduceOp.Average);
            return Bytes(t);
        });
        Assert.Equal(results[0].Item1, again[0]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void AllGatherConcatenatesEqualSlicesInRankOrder(int world)
    {
        var results = LocalJob.Results(world, context =>
        {
            var embeddings = full(4, 5, 10f * context.Rank) + arange(20, ScalarType.Float32).view(4, 5);   // [B, D]
            return context.Collectives.AllGather(embeddings);                                             // [W·B, D]
        });
        var expected = cat(Enumerable.Range(0, world).Select(r => full(4, 5, 10f * r) + arange(20, ScalarType.Float32).view(4, 5)).ToList(), 0);
        Assert.All(results, gathered => Assert.True(Same(gathered, expected)));
        Assert.Equal([4L * world, 5], results[0].shape);
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(3, 0)]
    public void BroadcastCopiesTheRootsTensorToEveryRank(int world, int root)
    {
        const long n = 2_500_000;   // 10 MB: a pipeline of three chunks
        var results = LocalJob.Results(world, context =>
        {
            var t = context.Rank == root ? arange(n, ScalarType.Float32) : full(n, -1f);
            context.Collectives.Broadcast(t, root);
            return t;
        });
        Assert.All(results, t => Assert.True(Same(t, arange(n, ScalarType.Float32))));
    }

    [Fact]
    public void ABarrierWaitsForTheSlowestRank()
    {
        var waited = LocalJob.Results(3, context =>
        {
            if (context.Rank == 2) Thread.Sleep(400);
            var clock = Stopwatch.StartNew();
            context.Collectives.Barrier();
            return clock.Elapsed.TotalSeconds;
        });
        Assert.True(waited[0] > 0.3 && waited[1] > 0.3, $"ranks 0 and 1 waited {waited[0]:F2} s and {waited[1]:F2} s");
    }

    [Fact]
    public void StartedCollectivesRunInOrderAndCompleteOnWait()
    {
        var results = LocalJob.Results(2, context =>
        {
            var tensors = Enumerable.Range(0, 5).Select(i => full(1000, (float)(i + context.Rank))).ToList();
            var works = tensors.Select(t => context.Collectives.StartAllReduce(t, ReduceOp.Sum)).ToList();
            foreach (var work in works) work.Wait();
            Assert.All(works, w => Assert.True(w.IsCompleted));
            return tensors.Select(t => t[0].item<float>()).ToArray();
        });
        Assert.Equal([1f, 3, 5, 7, 9], results[0]);
        Assert.Equal(results[0], results[1]);
    }

    [Fact]
    public void RanksThatDisagreeAboutTheNextCollectiveFailWithBothDescriptions()
    {
        var outcomes = LocalJob.Run(2, context =>
        {
            var t = ones(64);
            if (context.Rank == 0) context.Collectives.AllReduce(t);
            else context.Collectives.Broadcast(t, 0);
            return true;
        });
        Assert.All(outcomes, o => Assert.IsType<DistributedException>(o.Error));
        string message = outcomes[0].Error!.Message;
        Assert.Contains("collectives out of step", message);
        Assert.Contains("all_reduce #1 (sum, 256 B of Float32)", message);
        Assert.Contains("broadcast #1 (from rank 0, 256 B of Float32)", message);
    }

    [Fact]
    public void ARankThatStallsEndsTheOthersAfterTheTimeoutNamingIt()
    {
        var clock = Stopwatch.StartNew();
        var outcomes = LocalJob.Run(2, context =>
        {
            if (context.Rank == 1)
            {
                // Stalled for longer than the timeout; afterwards its own collective fails with the run's failure.
                Thread.Sleep(2500);
                context.Collectives.AllReduce(ones(8));
                return clock.Elapsed.TotalSeconds;
            }
            context.Collectives.AllReduce(ones(8));
            return clock.Elapsed.TotalSeconds;
        }, timeout: TimeSpan.FromSeconds(1));
        var failure = Assert.IsType<DistributedException>(outcomes[0].Error);
        Assert.Equal("rank 0 failed: all_reduce #1 (sum, 32 B of Float32) timed out after 1 s: no data came from rank 1", failure.Message);
        Assert.Equal(failure.Message, outcomes[1].Error!.Message);
        Assert.InRange(clock.Elapsed.TotalSeconds, 1, 15);
    }

    [Fact]
    public void ARankThatDiesMidCollectiveEndsTheOtherWithItsName()
    {
        var outcomes = LocalJob.Run(2, context =>
        {
            if (context.Rank == 1)
            {
                // The thread's process "dies": its sockets close without a goodbye.
                context.Collectives.Dispose();
                context.Store!.Dispose();
                throw new OperationCanceledException("rank 1 vanished");
            }
            var clock = Stopwatch.StartNew();
            try
            {
                context.Collectives.AllReduce(ones(1 << 20));
            }
            finally
            {
                Assert.True(clock.Elapsed.TotalSeconds < 10, $"rank 0 took {clock.Elapsed.TotalSeconds:F1} s to notice");
            }
            return true;
        });
        var failure = Assert.IsType<DistributedException>(outcomes[0].Error);
        Assert.StartsWith("rank 1 is gone", failure.Message);
    }

    [Fact]
    public void MisuseFailsOnTheRankThatMadeIt()
    {
        LocalJob.Results(2, context =>
        {
            Assert.Contains("contiguous", Assert.Throws<ArgumentException>(() => context.Collectives.StartAllReduce(ones(4, 4).t(), ReduceOp.Sum)).Message);
            Assert.Contains("average needs a floating-point", Assert.Throws<ArgumentException>(() => context.Collectives.StartAllReduce(ones(4, ScalarType.Int64), ReduceOp.Average)).Message);
            Assert.Contains("not Bool", Assert.Throws<ArgumentException>(() => context.Collectives.StartAllReduce(ones(4, ScalarType.Bool), ReduceOp.Sum)).Message);
            Assert.Contains("root 2 is not a rank of 2", Assert.Throws<ArgumentOutOfRangeException>(() => context.Collectives.StartBroadcast(ones(4), 2)).Message);
            Assert.Contains("output holds 4 elements", Assert.Throws<ArgumentException>(() => context.Collectives.StartAllGather(ones(4), ones(4))).Message);
            // The ring is still usable after refused calls: nothing was sent.
            var t = ones(3);
            context.Collectives.AllReduce(t);
            Assert.Equal(2f, t[0].item<float>());
            return true;
        });
    }
}
