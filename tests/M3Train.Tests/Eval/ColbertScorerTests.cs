using M3Train.Eval;
using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Eval;

public class ColbertScorerTests
{
    static TextEncodings RandomVectors(Random rng, int[] tokens, int dim)
    {
        var offsets = new long[tokens.Length + 1];
        for (int i = 0; i < tokens.Length; i++) offsets[i + 1] = offsets[i] + tokens[i];
        var data = new float[offsets[^1] * dim];
        for (long row = 0; row < offsets[^1]; row++)
        {
            var v = Enumerable.Range(0, dim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            float norm = MathF.Sqrt(v.Sum(x => x * x));
            for (int j = 0; j < dim; j++) data[row * dim + j] = v[j] / norm;
        }
        return new TextEncodings(tokens.Length, EncodingParts.Colbert, 0, [], [], dim, offsets, data);
    }

    [Theory]
    [InlineData(1L << 24)]
    [InlineData(40L)] // chunks of one or two documents
    public void EqualsMaxSimOverRealTokens(long chunkElements)
    {
        var rng = new Random(5);
        const int dim = 4;
        var queries = RandomVectors(rng, [3, 1], dim);
        var docs = RandomVectors(rng, [5, 1, 7, 2, 4], dim);
        int[] picked = [4, 0, 2, 2, 1];
        for (int q = 0; q < queries.Count; q++)
        {
            double[] scores = ColbertScorer.Score(queries, q, docs, picked, TorchSharp.torch.CPU, chunkElements);
            for (int k = 0; k < picked.Length; k++)
            {
                double sum = 0;
                var qv = queries.ColbertOf(q);
                var dv = docs.ColbertOf(picked[k]);
                for (int i = 0; i < queries.ColbertTokens(q); i++)
                {
                    double best = double.NegativeInfinity;
                    for (int j = 0; j < docs.ColbertTokens(picked[k]); j++)
                    {
                        double dot = 0;
                        for (int d = 0; d < dim; d++) dot += qv[i * dim + d] * dv[j * dim + d];
                        best = Math.Max(best, dot);
                    }
                    sum += best;
                }
                Assert.Equal(sum / queries.ColbertTokens(q), scores[k], 5);
            }
        }
    }
}
