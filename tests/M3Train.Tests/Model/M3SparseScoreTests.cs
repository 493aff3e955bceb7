using M3Train.Model;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

/// <summary>The lexical score pooled into query slots equals the product of the dense [N, V] lexical vectors, in value and gradient.</summary>
public class M3SparseScoreTests
{
    [Fact]
    public void QuerySlotScoresEqualDenseVocabularyScoresInValueAndGradient()
    {
        const long vocab = 20;
        var generator = new Generator(11);
        // Few ids for many tokens: ids repeat within texts, across queries and across passages; ids 15..19 occur only in passages.
        var qIds = randint(0, 15, [3, 6], generator: generator);
        var pIds = randint(0, vocab, [5, 9], generator: generator);
        var qWeights = rand([3, 6], generator: generator).requires_grad_(true);
        var pWeights = rand([5, 9], generator: generator).requires_grad_(true);
        var probe = rand([3, 5], generator: generator);

        var scores = M3Scores.Sparse(qIds, qWeights, pIds, pWeights);
        var (qGrad, pGrad) = Gradients(scores, probe, qWeights, pWeights);

        var qVocab = qWeights.detach().clone().requires_grad_(true);
        var pVocab = pWeights.detach().clone().requires_grad_(true);
        var reference = SparseEmbeddingReference.Of(qIds, qVocab, vocab).matmul(SparseEmbeddingReference.Of(pIds, pVocab, vocab).T); // [3, 5]
        var (qExpected, pExpected) = Gradients(reference, probe, qVocab, pVocab);

        Assert.Equal([3L, 5L], scores.shape);
        Assert.True(scores.allclose(reference, 1e-5, 1e-6));
        Assert.True(qGrad.allclose(qExpected, 1e-5, 1e-6));
        Assert.True(pGrad.allclose(pExpected, 1e-5, 1e-6));
        Assert.True(pGrad.abs().sum().item<float>() > 0);
    }

    static (Tensor Q, Tensor P) Gradients(Tensor scores, Tensor probe, Tensor q, Tensor p)
    {
        var grads = autograd.grad([(scores * probe).sum()], [q, p]);
        return (grads[0], grads[1]);
    }
}
