namespace M3Train.Eval;

/// <summary>
/// An inverted index over BGE-M3 lexical weights (token id → weight per document) for exact top-k retrieval by
/// <see cref="LexicalScore"/>: only the posting lists of the query's tokens are read.
/// </summary>
/// <remarks>
/// Candidates are the documents with a positive score (those sharing a token with positive weights); results are
/// ordered by score descending, then corpus index ascending, and equal a brute-force scan under that rule. Scores
/// are accumulated in double in the query's token order, as <see cref="LexicalScore.Of"/> does.
/// </remarks>
public sealed class SparseInvertedIndex
{
    private readonly Dictionary<int, (int[] Docs, float[] Weights)> _postings;

    public SparseInvertedIndex(IReadOnlyList<IReadOnlyDictionary<int, float>> documents)
    {
        DocumentCount = documents.Count;
        var lists = new Dictionary<int, (List<int> Docs, List<float> Weights)>();
        for (int doc = 0; doc < documents.Count; doc++)
            foreach (var (token, weight) in documents[doc])
            {
                if (!lists.TryGetValue(token, out var list)) lists[token] = list = ([], []);
                list.Docs.Add(doc);
                list.Weights.Add(weight);
            }
        _postings = lists.ToDictionary(kv => kv.Key, kv => (kv.Value.Docs.ToArray(), kv.Value.Weights.ToArray()));
    }

    public int DocumentCount { get; }

    /// <summary>Number of distinct token ids in the index.</summary>
    public int VocabularySize => _postings.Count;

    public SearchHit[] Search(IReadOnlyDictionary<int, float> query, int k) => Search(query, k, new Accumulator(DocumentCount));

    /// <summary>Top-k for many queries, in parallel over queries.</summary>
    public SearchHit[][] Search(IReadOnlyList<IReadOnlyDictionary<int, float>> queries, int k)
    {
        var results = new SearchHit[queries.Count][];
        Parallel.For(0, queries.Count, () => new Accumulator(DocumentCount),
            (q, _, accumulator) => { results[q] = Search(queries[q], k, accumulator); return accumulator; },
            _ => { });
        return results;
    }

    private SearchHit[] Search(IReadOnlyDictionary<int, float> query, int k, Accumulator accumulator)
    {
        foreach (var (token, weight) in query)
        {
            if (!_postings.TryGetValue(token, out var posting)) continue;
            for (int i = 0; i < posting.Docs.Length; i++) accumulator.Add(posting.Docs[i], (double)weight * posting.Weights[i]);
        }
        return accumulator.TakeTop(k);
    }

    /// <summary>Per-thread score buffer; only the touched entries are read and reset.</summary>
    private sealed class Accumulator(int documents)
    {
        private readonly double[] _scores = new double[documents];
        private readonly bool[] _touched = new bool[documents];
        private readonly List<int> _docs = [];

        public void Add(int doc, double value)
        {
            if (!_touched[doc])
            {
                _touched[doc] = true;
                _docs.Add(doc);
            }
            _scores[doc] += value;
        }

        public SearchHit[] TakeTop(int k)
        {
            var hits = new List<SearchHit>(_docs.Count);
            foreach (int doc in _docs)
            {
                if (_scores[doc] > 0) hits.Add(new SearchHit(doc, _scores[doc]));
                _scores[doc] = 0;
                _touched[doc] = false;
            }
            _docs.Clear();
            return SearchHit.Top(hits, k);
        }
    }
}
