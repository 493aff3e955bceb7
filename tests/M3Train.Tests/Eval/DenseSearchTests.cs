using M3Train.Eval;
using TorchSharp;
using Xunit;

namespace M3Train.Tests.Eval;

public class DenseSearchTests
{
    [Theory]
    [InlineData(7, 10, 2)]
    [InlineData(50, 16, 3)]
    [InlineData(1, 37, 5)]
    public void ChunkedTopKEqualsBruteForce(int k, int chunk, int queryBatch)
    {
        const int n = 37, q = 5, d = 8;
        var rng = new Random(61);
        float[] corpus = Enumerable.Range(0, n * d).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        float[] queries = Enumerable.Range(0, q * d).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();

        var hits = DenseSearch.TopK(torch.tensor(queries, [q, d]), torch.tensor(corpus, [n, d]), k, torch.CPU, chunk, queryBatch);

        for (int row = 0; row < q; row++)
        {
            var expected = Enumerable.Range(0, n)
                .Select(doc => (Doc: doc, Score: Enumerable.Range(0, d).Sum(j => (double)queries[row * d + j] * corpus[doc * d + j])))
                .OrderByDescending(x => x.Score).ThenBy(x => x.Doc).Take(k).ToArray();
            Assert.Equal(expected.Select(x => x.Doc), hits[row].Select(h => h.DocIndex));
            for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i].Score, hits[row][i].Score, 5);
        }
    }

    [Fact]
    public void EmptyCorpusGivesEmptyLists()
    {
        var hits = DenseSearch.TopK(torch.ones(2, 4), torch.zeros(0, 4), 10, torch.CPU);
        Assert.All(hits, Assert.Empty);
    }
}
