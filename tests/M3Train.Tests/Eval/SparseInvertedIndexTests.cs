using M3Train.Eval;
using Xunit;

namespace M3Train.Tests.Eval;

public class SparseInvertedIndexTests
{
    static IReadOnlyDictionary<int, float> RandomWeights(Random rng, int vocabulary, int maxTokens)
    {
        var weights = new Dictionary<int, float>();
        int count = rng.Next(0, maxTokens + 1);
        while (weights.Count < count) weights[rng.Next(vocabulary)] = (float)(0.01 + rng.NextDouble());
        return weights;
    }

    static SearchHit[] BruteForce(IReadOnlyList<IReadOnlyDictionary<int, float>> docs, IReadOnlyDictionary<int, float> query, int k)
    {
        var scored = new List<SearchHit>();
        for (int doc = 0; doc < docs.Count; doc++)
        {
            double score = 0;
            foreach (var token in query.Keys)
                if (docs[doc].TryGetValue(token, out float w)) score += (double)query[token] * w;
            if (score > 0) scored.Add(new SearchHit(doc, score));
        }
        return scored.OrderByDescending(h => h.Score).ThenBy(h => h.DocIndex).Take(k).ToArray();
    }

    [Fact]
    public void IndexRetrievalEqualsBruteForceLexicalScoring()
    {
        var rng = new Random(71);
        var docs = Enumerable.Range(0, 300).Select(_ => RandomWeights(rng, 60, 12)).ToArray();
        var queries = Enumerable.Range(0, 40).Select(_ => RandomWeights(rng, 60, 6)).ToArray();
        var index = new SparseInvertedIndex(docs);
        var batched = index.Search(queries, 20);

        int compared = 0;
        foreach (var (query, q) in queries.Select((x, i) => (x, i)))
        {
            var expected = BruteForce(docs, query, 20);
            var actual = index.Search(query, 20);
            Assert.Equal(expected.Select(h => h.DocIndex), actual.Select(h => h.DocIndex));
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.Equal(expected[i].Score, actual[i].Score, 12);
                Assert.Equal(LexicalScore.Of(query, docs[actual[i].DocIndex]), actual[i].Score, 12);
            }
            Assert.Equal(actual, batched[q]);
            compared += expected.Length;
        }
        Assert.True(compared > 200, $"the random case should retrieve something ({compared} hits compared)");
    }

    [Fact]
    public void EqualScoresKeepCorpusOrderAndUnsharedDocumentsAreNotCandidates()
    {
        IReadOnlyDictionary<int, float>[] docs =
        [
            new Dictionary<int, float> { [5] = 0.5f },
            new Dictionary<int, float> { [7] = 0.9f },
            new Dictionary<int, float> { [5] = 0.5f, [9] = 0.1f },
            new Dictionary<int, float> { [5] = 0.5f },
        ];
        var hits = new SparseInvertedIndex(docs).Search(new Dictionary<int, float> { [5] = 2f, [9] = 1f }, 10);
        // doc 2: 2·0.5 + 1·0.1; docs 0 and 3 tie at 2·0.5 and keep corpus order; doc 1 shares no token.
        Assert.Equal([new SearchHit(2, 2.0 * 0.5f + 1.0 * 0.1f), new SearchHit(0, 2.0 * 0.5f), new SearchHit(3, 2.0 * 0.5f)], hits);
    }
}
