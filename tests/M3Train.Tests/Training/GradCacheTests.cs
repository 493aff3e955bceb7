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

    [Fact]
    public void ChunkedTwoPassGradientsEqualTheSinglePass_WithDropout()
    {
        torch.manual_seed(0);
        var model = new Encoder();
        model.train();
        var queries = randn(16, 6);
        var passages = randn(16, 6);

        // Single pass: each sub-batch seeded as GradCache seeds it, so both see the same dropout masks.
        var qs = new List<Tensor>(); var ps = new List<Tensor>();
        for (int i = 0; i < 4; i++)
        {
            GradCache.Reseed(100 + i); qs.Add(model.forward(queries[TensorIndex.Slice(4 * i, 4 * i + 4)]));
            GradCache.Reseed(200 + i); ps.Add(model.forward(passages[TensorIndex.Slice(4 * i, 4 * i + 4)]));
        }
        var single = InfoNce(cat(qs, 0), cat(ps, 0))["loss"];
        single.backward();
        var expected = model.parameters().Select(p => p.grad!.clone()).ToList();
        model.zero_grad();

        var chunks = new List<EncodeChunk>();
        for (int i = 0; i < 4; i++)
        {
            int k = i;
            chunks.Add(new EncodeChunk("q", () => [model.forward(queries[TensorIndex.Slice(4 * k, 4 * k + 4)])], 100 + k));
            chunks.Add(new EncodeChunk("p", () => [model.forward(passages[TensorIndex.Slice(4 * k, 4 * k + 4)])], 200 + k));
        }
        var parts = GradCache.Step(chunks, reps => InfoNce(reps["q"][0], reps["p"][0]));

        Assert.Equal(single.item<float>(), parts["loss"].item<float>(), 5);
        foreach (var (got, want) in model.parameters().Select(p => p.grad!).Zip(expected))
            Assert.True((got - want).abs().max().item<float>() < 1e-6f, "GradCache gradient differs from the single pass");
    }
}
