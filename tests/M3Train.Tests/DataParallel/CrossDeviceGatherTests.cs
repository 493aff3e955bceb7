using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.DataParallel;

public class CrossDeviceGatherTests
{
    const int B = 8, G = 2;

    static nn.Module<Tensor, Tensor> Encoder(long seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 4));
    }

    /// <summary>Dense InfoNCE of the queries <paramref name="rows"/> of the gathered batch against every gathered passage.</summary>
    static Tensor DenseLoss(Tensor allQ, Tensor allP, long firstRow, long rows)
    {
        var q = nn.functional.normalize(allQ[TensorIndex.Slice(firstRow, firstRow + rows)], dim: -1);
        var p = nn.functional.normalize(allP, dim: -1);
        var scores = q.matmul(p.T) / 0.02f;                                       // [rows, W·B·G]
        var targets = (arange(firstRow, firstRow + rows) * G).to(int64);
        return nn.functional.cross_entropy(scores, targets);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TwoReplicasWithHalfTheBatchGiveTheLossAndGradientsOfOne(bool gradCache)
    {
        using var inputs = new Generator(41, CPU);
        var queries = randn(B, 6, generator: inputs);
        var passages = randn(B * G, 6, generator: inputs);

        var single = Encoder(7);
        var loss1 = DenseLoss(single.forward(queries), single.forward(passages), 0, B);
        loss1.backward();
        var expected = single.parameters().Select(p => p.grad!.clone()).ToList();

        // The master starts from the single model's weights (copied, not re-seeded: tests running beside this one
        // draw from the same global generator).
        var master = Encoder(8);
        using (no_grad())
            foreach (var (to, from) in master.parameters().Zip(single.parameters())) to.copy_(from);
        var set = new ReplicaSet<nn.Module<Tensor, Tensor>>([master, Encoder(9)], [CPU, CPU]);
        Tensor loss2;
        Tensor Q(int r) => queries[TensorIndex.Slice(r * B / 2, (r + 1) * B / 2)];
        Tensor P(int r) => passages[TensorIndex.Slice(r * B * G / 2, (r + 1) * B * G / 2)];
        if (!gradCache)
        {
            var reps = set.RunOnAll(r => (q: set.Replicas[r].forward(Q(r)), p: set.Replicas[r].forward(P(r))));
            var allQ = CrossDeviceGather.Gather(reps.Select(x => x.q).ToList(), CPU);
            var allP = CrossDeviceGather.Gather(reps.Select(x => x.p).ToList(), CPU);
            // Each replica's loss over its own rows against all passages; the step loss is their mean.
            loss2 = stack(Enumerable.Range(0, 2).Select(r => DenseLoss(allQ, allP, r * B / 2, B / 2)).ToList()).mean();
            loss2.backward();
        }
        else
        {
            var pieces = new List<Func<M3Representations>>();
            for (int r = 0; r < 2; r++)
            {
                int k = r;
                pieces.Add(() => new M3Representations(set.Replicas[k].forward(Q(k)), null, null, null, null));
                pieces.Add(() => new M3Representations(set.Replicas[k].forward(P(k)), null, null, null, null));
            }
            loss2 = GradCache.Step(pieces, cached =>
            {
                var allQ = cat([cached[0].Dense, cached[2].Dense], 0);
                var allP = cat([cached[1].Dense, cached[3].Dense], 0);
                var value = stack(Enumerable.Range(0, 2).Select(r => DenseLoss(allQ, allP, r * B / 2, B / 2)).ToList()).mean();
                return (value, value.detach());
            });
        }
        set.ReduceGradients();

        // Float32 sums in a different order: over 300 random draws the worst gradient differed by 4.6e-7 of the
        // largest gradient entry (1.5e-5 absolute, since a temperature of 0.02 scales gradients up), so the bound is
        // relative to each tensor's scale.
        float l1 = loss1.item<float>(), l2 = loss2.item<float>();
        Assert.True(Math.Abs(l1 - l2) <= 1e-5 * Math.Max(1, Math.Abs(l1)), $"loss {l2} vs {l1}");
        foreach (var (got, want) in set.Master.parameters().Select(p => p.grad!).Zip(expected))
        {
            float diff = (got - want).abs().max().item<float>(), scale = want.abs().max().item<float>();
            Assert.True(diff <= 1e-5f * Math.Max(scale, 1e-3f), $"gradient differs by {diff} at scale {scale}");
        }
    }
}
