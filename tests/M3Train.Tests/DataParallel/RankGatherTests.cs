using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Tests.Distributed;
using M3Train.Training;
using M3Train.Training.Losses;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.DataParallel;

/// <summary>
/// Cross-device negatives on two ranks (threads of this process with their own rendezvous and TCP ring, as processes
/// would have) against the same computation built by hand in one process, in both gradient modes.
/// </summary>
public class RankGatherTests
{
    const int B = 8, G = 2, W = 2;

    static Sequential Encoder()
    {
        using var generator = new Generator(7, CPU);
        var encoder = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 4));
        using (no_grad())
            foreach (var p in encoder.parameters()) p.copy_(randn(p.shape, generator: generator) * 0.5);
        return encoder;
    }

    static (Tensor Queries, Tensor Passages) Inputs()
    {
        using var generator = new Generator(41, CPU);
        return (randn(B, 6, generator: generator), randn(B * G, 6, generator: generator));
    }

    static Tensor Rows(Tensor t, int rank, int perRank) => t[TensorIndex.Slice(rank * perRank, (rank + 1) * perRank)];

    /// <summary>
    /// Rank r's loss over the gathered embeddings: the dense InfoNCE of every gathered row against every gathered passage
    /// (what every rank computes with cross-device negatives), plus a term of its own rows so the ranks' losses differ.
    /// </summary>
    static Tensor RankLoss(Tensor allQ, Tensor allP, int rank)
    {
        var cross = CrossDeviceDenseScores.FromGathered(nn.functional.normalize(allQ, dim: -1), nn.functional.normalize(allP, dim: -1), rank, W);
        var global = nn.functional.cross_entropy(cross.Global / 0.05, cross.Targets);
        var own = InfoNceLoss.Compute(cross.Local / 0.05, G);
        return global + 0.5 * own;
    }

    /// <summary>One model encodes both halves; the step loss is the mean of the ranks' losses: the exact gradient.</summary>
    static (float Loss, List<Tensor> Grads) HandBuiltExact()
    {
        var (queries, passages) = Inputs();
        var model = Encoder();
        var allQ = model.forward(queries);
        var allP = model.forward(passages);
        var loss = stack(Enumerable.Range(0, W).Select(r => RankLoss(allQ, allP, r)).ToList()).mean();
        loss.backward();
        return (loss.item<float>(), model.parameters().Select(p => p.grad!.clone()).ToList());
    }

    /// <summary>
    /// FlagEmbedding's: each rank's loss back-propagates only through that rank's own slot (the other slot a constant),
    /// and the ranks' gradients are averaged.
    /// </summary>
    static (float Loss, List<Tensor> Grads) HandBuiltLocal()
    {
        var (queries, passages) = Inputs();
        var model = Encoder();
        float loss = 0;
        for (int r = 0; r < W; r++)
        {
            var q = Enumerable.Range(0, W).Select(s => model.forward(Rows(queries, s, B / W))).ToList();
            var p = Enumerable.Range(0, W).Select(s => model.forward(Rows(passages, s, B * G / W))).ToList();
            var allQ = cat(q.Select((t, s) => s == r ? t : t.detach()).ToList(), 0);
            var allP = cat(p.Select((t, s) => s == r ? t : t.detach()).ToList(), 0);
            var rankLoss = RankLoss(allQ, allP, r);
            rankLoss.backward();
            loss += rankLoss.item<float>() / W;
        }
        return (loss, model.parameters().Select(p => p.grad!.clone() / W).ToList());
    }

    /// <summary>Two ranks, each with its own replica and half the rows, gathering through the group; gradients averaged by the buckets.</summary>
    static (float Loss, List<Tensor> Grads)[] TwoRanks(bool exact, bool gradCache) => LocalJob.Results(W, context =>
    {
        var (queries, passages) = Inputs();
        var model = Encoder();
        var group = new DataParallelGroup(context.Collectives, CPU);
        var trainable = model.parameters().ToList();
        using var buckets = new GradientBuckets(group, trainable, []);
        var q = Rows(queries, group.Rank, B / W);
        var p = Rows(passages, group.Rank, B * G / W);
        Tensor loss;
        if (!gradCache)
        {
            loss = RankLoss(group.Gather(model.forward(q), exact), group.Gather(model.forward(p), exact), group.Rank);
            loss.backward();
        }
        else
        {
            Func<M3Representations>[] pieces = [() => new(model.forward(q), null, null, null, null), () => new(model.forward(p), null, null, null, null)];
            loss = GradCache.Step(pieces, cached =>
            {
                var value = RankLoss(group.Gather(cached[0].Dense, exact), group.Gather(cached[1].Dense, exact), group.Rank);
                return (value, value.detach());
            });
        }
        group.ThrowIfBackwardFailed();
        buckets.Reduce();
        return (group.Mean(loss).item<float>(), trainable.Select(t => t.grad!.clone()).ToList());
    });

    static void AssertClose(float wantLoss, List<Tensor> want, float gotLoss, List<Tensor> got)
    {
        Assert.True(Math.Abs(wantLoss - gotLoss) <= 1e-5 * Math.Max(1, Math.Abs(wantLoss)), $"loss {gotLoss} vs {wantLoss}");
        foreach (var (g, w) in got.Zip(want))
        {
            // Float32 sums in another order, at a temperature that scales gradients up: relative to each tensor's scale.
            float diff = (g - w).abs().max().item<float>(), scale = w.abs().max().item<float>();
            Assert.True(diff <= 1e-5f * Math.Max(scale, 1e-3f), $"gradient differs by {diff} at scale {scale}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheExactGradientOfTwoRanksIsTheGradientOfTheMeanOfTheirLosses(bool gradCache)
    {
        var (loss, grads) = HandBuiltExact();
        var ranks = TwoRanks(exact: true, gradCache);
        foreach (var (gotLoss, got) in ranks) AssertClose(loss, grads, gotLoss, got);
        // Averaged gradients are the same bits on every rank.
        Assert.All(ranks[1].Grads.Zip(ranks[0].Grads), pair => Assert.True(pair.First.equal(pair.Second).all().item<bool>()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheLocalGradientIsFlagEmbeddingsOwnSlotGradientAveragedOverRanks(bool gradCache)
    {
        var (loss, grads) = HandBuiltLocal();
        foreach (var (gotLoss, got) in TwoRanks(exact: false, gradCache)) AssertClose(loss, grads, gotLoss, got);
    }

    [Fact]
    public void TheTwoModesGiveTheSameLossAndDifferentGradients()
    {
        var exact = HandBuiltExact();
        var local = HandBuiltLocal();
        Assert.Equal(exact.Loss, local.Loss, 5);
        double largest = exact.Grads.Zip(local.Grads).Max(pair => (pair.First - pair.Second).abs().max().item<float>());
        Assert.True(largest > 1e-3, $"the modes' gradients differ by only {largest}");
    }
}
