using M3Train.Distributed;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Distributed;

public class WeightChecksumTests
{
    static List<Tensor> Weights(int seed) => [randn(17, 5, generator: new Generator(seed: (ulong)seed)), arange(9, ScalarType.Int64)];

    [Fact]
    public void TheDigestSeesEveryBitTheShapeAndTheDtype()
    {
        long digest = WeightChecksum.Of(Weights(1));
        Assert.Equal(digest, WeightChecksum.Of(Weights(1)));
        var flipped = Weights(1);
        flipped[0][3, 2] = flipped[0][3, 2] + 1e-6f;
        Assert.NotEqual(digest, WeightChecksum.Of(flipped));
        var reshaped = Weights(1);
        reshaped[0] = reshaped[0].reshape(5, 17);
        Assert.NotEqual(digest, WeightChecksum.Of(reshaped));
        var retyped = Weights(1);
        retyped[1] = retyped[1].to(ScalarType.Float64);
        Assert.NotEqual(digest, WeightChecksum.Of(retyped));
    }

    [Fact]
    public void IdenticalRanksPassAndADivergedRankIsNamed()
    {
        LocalJob.Results(3, context =>
        {
            WeightChecksum.Verify(context.Collectives, Weights(7), CPU);
            return true;
        });
        var outcomes = LocalJob.Results(3, context =>
        {
            var error = Assert.Throws<DistributedException>(() => WeightChecksum.Verify(context.Collectives, Weights(context.Rank == 2 ? 8 : 7), CPU));
            return error.Message;
        });
        Assert.All(outcomes, m => Assert.StartsWith("the weights differ across ranks: rank 2 holds other weights than rank 0", m));
    }
}
