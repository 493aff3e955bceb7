using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// Scores query–passage pairs from encodings of the distinct queries and passages (each text encoded once, however
/// many pairs it is in): dense ⟨e_q, e_p⟩, lexical <see cref="LexicalScore"/>, multi-vector <see cref="ColbertScorer"/>.
/// </summary>
public static class PairScorer
{
    /// <param name="queries">Encodings with all three parts.</param>
    /// <param name="passages">Encodings with all three parts.</param>
    /// <param name="pairs">(query index, passage index) pairs.</param>
    /// <param name="device">Where the multi-vector products run.</param>
    public static PairScores Score(TextEncodings queries, TextEncodings passages, IReadOnlyList<(int Query, int Passage)> pairs, Device device)
    {
        if (queries.Parts != EncodingParts.All || passages.Parts != EncodingParts.All)
            throw new ArgumentException("pair scores need all three representations of queries and passages");
        var dense = new double[pairs.Count];
        var sparse = new double[pairs.Count];
        var colbert = new double[pairs.Count];
        for (int i = 0; i < pairs.Count; i++)
        {
            var (q, p) = pairs[i];
            dense[i] = queries.DenseDot(q, passages, p);
            sparse[i] = LexicalScore.Of(queries.Lexical[q], passages.Lexical[p]);
        }
        // One device call per query with all of its passages.
        foreach (var group in Enumerable.Range(0, pairs.Count).GroupBy(i => pairs[i].Query))
        {
            int[] members = group.ToArray();
            double[] scores = ColbertScorer.Score(queries, group.Key, passages, members.Select(i => pairs[i].Passage).ToArray(), device);
            for (int j = 0; j < members.Length; j++) colbert[members[j]] = scores[j];
        }
        return new PairScores(dense, sparse, colbert);
    }
}
