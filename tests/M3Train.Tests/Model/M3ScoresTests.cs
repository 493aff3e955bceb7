using M3Train.Model;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

public class M3ScoresTests
{
    static readonly long[] UnusedIds = [0, 1, 2, 3];

    /// <summary>FlagEmbedding's training path: scatter into [N, L, V], max over L, zero the special ids, matmul.</summary>
    static Tensor ReferenceSparse(Tensor qIds, Tensor qWeights, Tensor pIds, Tensor pWeights, long vocab)
    {
        Tensor Embed(Tensor ids, Tensor weights)
        {
            var scattered = zeros(ids.shape[0], ids.shape[1], vocab).scatter(2, ids.unsqueeze(-1), weights.unsqueeze(-1)); // [N, L, V]
            var pooled = scattered.max(1).values;
            var keep = ones(vocab);
            keep[tensor(UnusedIds)] = zeros(UnusedIds.Length);
            return pooled * keep;
        }
        return Embed(qIds, qWeights).matmul(Embed(pIds, pWeights).T);
    }

    [Fact]
    public void SparseScoresAndGradientsEqualTheScatterMaxReference()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        const long vocab = 40;
        // A small vocabulary makes repeated ids within and across texts common; the 0/1 columns are padding.
        var qIds = randint(0, vocab, [3, 12], generator: generator);
        var pIds = randint(0, vocab, [5, 17], generator: generator);
        var qRaw = rand([3, 12], generator: generator).requires_grad_(true);
        var pRaw = rand([5, 17], generator: generator).requires_grad_(true);
        var upstream = randn([3, 5], generator: generator);

        Tensor Zeroed(Tensor ids, Tensor w) => w * ids.isin(tensor(UnusedIds), invert: true);
        var ours = M3Scores.Sparse(qIds, Zeroed(qIds, qRaw), pIds, Zeroed(pIds, pRaw));
        var (qGrad, pGrad) = Gradients(ours, upstream, qRaw, pRaw);
        var theirs = ReferenceSparse(qIds, qRaw, pIds, pRaw, vocab);
        var (qGradRef, pGradRef) = Gradients(theirs, upstream, qRaw, pRaw);

        Assert.True(ours.allclose(theirs, rtol: 1e-6, atol: 1e-6));
        Assert.True(qGrad.allclose(qGradRef, rtol: 1e-6, atol: 1e-6));
        Assert.True(pGrad.allclose(pGradRef, rtol: 1e-6, atol: 1e-6));
        // A repeated id's gradient reaches only its max occurrence: some positions get exactly none.
        Assert.True(qGrad.eq(0).sum().item<long>() > 0);
    }

    static (Tensor, Tensor) Gradients(Tensor scores, Tensor upstream, Tensor a, Tensor b)
    {
        var grads = autograd.grad([scores], [a, b], [upstream]);
        return (grads[0], grads[1]);
    }

    [Fact]
    public void MaxPerIdKeepsTheMaxOfEachIdOnce()
    {
        using var scope = NewDisposeScope();
        var ids = tensor(new long[,] { { 5, 9, 5, 7, 9, 5 } });
        var weights = tensor(new float[,] { { 0.2f, 0.7f, 0.9f, 0.1f, 0.3f, 0.4f } });
        var (sorted, pooled) = M3Scores.MaxPerId(ids, weights);
        var map = Enumerable.Range(0, 6).Where(i => pooled[0, i].item<float>() > 0)
            .ToDictionary(i => sorted[0, i].item<long>(), i => pooled[0, i].item<float>());
        Assert.Equal(new Dictionary<long, float> { [5] = 0.9f, [7] = 0.1f, [9] = 0.7f }, map);
    }

    [Fact]
    public void ChunkedColbertEqualsOneShotAndMaskedMatchesPerPairUnpadded()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(11);
        var q = nn.functional.normalize(randn([2, 5, 8], generator: generator), dim: -1);
        var qMask = tensor(new long[,] { { 1, 1, 1, 0, 0 }, { 1, 1, 1, 1, 1 } });
        q = q * qMask.unsqueeze(-1);
        var p = nn.functional.normalize(randn([3, 6, 8], generator: generator), dim: -1);
        var pMask = tensor(new long[,] { { 1, 1, 0, 0, 0, 0 }, { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 0, 0, 0 } });
        p = p * pMask.unsqueeze(-1);

        var oneShot = M3Scores.Colbert(q, qMask, p);
        var chunked = M3Scores.Colbert(q, qMask, p, chunkElements: 1);
        Assert.True(oneShot.allclose(chunked, rtol: 0, atol: 1e-7));

        var masked = M3Scores.Colbert(q, qMask, p, pMask);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
            {
                // FlagEmbedding's colbert_score on unpadded vectors: Σ_i max_j q_i·p_j / len(q).
                long lq = qMask[i].sum().item<long>(), lp = pMask[j].sum().item<long>();
                var tokenScores = q[i, ..(int)lq].matmul(p[j, ..(int)lp].T);
                float expected = (tokenScores.max(1).values.sum() / lq).item<float>();
                Assert.Equal(expected, masked[i, j].item<float>(), 1e-6f);
            }
    }
}
