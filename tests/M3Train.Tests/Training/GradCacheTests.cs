using M3Train.Model;
using M3Train.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

[Collection(GlobalRandomCollection.Name)]
public class GradCacheTests
{
    sealed class Encoder : nn.Module<Tensor, Tensor>
    {
        readonly Linear lin1, lin2;
        readonly Dropout drop;

        public Encoder() : base("enc")
        {
            lin1 = nn.Linear(6, 16);
            drop = nn.Dropout(0.1);
            lin2 = nn.Linear(16, 4);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            nn.functional.normalize(lin2.forward(drop.forward(nn.functional.gelu(lin1.forward(x)))), dim: -1);
    }

    static Dictionary<string, Tensor> InfoNce(Tensor q, Tensor p)
    {
        var scores = q.matmul(p.T) / 0.05f;                                    // [B, B]
        return new() { ["loss"] = nn.functional.cross_entropy(scores, arange(q.shape[0])) };
    }

    /// <summary>An embedding as the dense representation, its dropout drawn after seeding torch's generator.</summary>
    internal static M3Representations Seeded(long seed, Func<Tensor> encode)
    {
        torch.manual_seed(seed);
        return new M3Representations(encode(), null, null, null, null);
    }

    [Fact]
    public void ChunkedTwoPassGradientsEqualTheSinglePass_WithDropout()
    {
        torch.manual_seed(0);
        var model = new Encoder();
        model.train();
        var queries = randn(16, 6);
        var passages = randn(16, 6);

        // Single pass: each sub-batch seeded as its GradCache piece seeds itself, so both see the same dropout masks.
        var qs = new List<Tensor>(); var ps = new List<Tensor>();
        for (int i = 0; i < 4; i++)
        {
            torch.manual_seed(100 + i); qs.Add(model.forward(queries[TensorIndex.Slice(4 * i, 4 * i + 4)]));
            torch.manual_seed(200 + i); ps.Add(model.forward(passages[TensorIndex.Slice(4 * i, 4 * i + 4)]));
        }
        var single = InfoNce(cat(qs, 0), cat(ps, 0))["loss"];
        single.backward();
        var expected = model.parameters().Select(p => p.grad!.clone()).ToList();
        model.zero_grad();

        // Pieces q0, p0, q1, p1, ...: each re-seeds the dropout it draws, in both passes.
        var pieces = new List<Func<M3Representations>>();
        for (int i = 0; i < 4; i++)
        {
            int k = i;
            pieces.Add(() => Seeded(100 + k, () => model.forward(queries[TensorIndex.Slice(4 * k, 4 * k + 4)])));
            pieces.Add(() => Seeded(200 + k, () => model.forward(passages[TensorIndex.Slice(4 * k, 4 * k + 4)])));
        }
        var loss = GradCache.Step(pieces, cached =>
        {
            var value = InfoNce(cat(cached.Where((_, i) => i % 2 == 0).Select(c => c.Dense).ToList(), 0),
                                cat(cached.Where((_, i) => i % 2 == 1).Select(c => c.Dense).ToList(), 0))["loss"];
            return (value, value.detach());
        });

        Assert.Equal(single.item<float>(), loss.item<float>(), 5);
        foreach (var (got, want) in model.parameters().Select(p => p.grad!).Zip(expected))
            Assert.True((got - want).abs().max().item<float>() < 1e-6f, "GradCache gradient differs from the single pass");
    }
}
