using M3Train.Text;

namespace M3Train.Onnx;

/// <summary>
/// The exported graph's outputs for one padded batch, row-major. An output that was not requested is empty.
/// Shapes: DenseVecs [B, D], SparseWeights [B, L], ColbertVecs [B, L-1, C].
/// </summary>
public sealed record OnnxM3Outputs(float[] DenseVecs, float[] SparseWeights, float[] ColbertVecs, int BatchSize, int SequenceLength, int HiddenSize, int ColbertDim)
{
    /// <summary>Row <paramref name="row"/> as FlagEmbedding's encode returns it, given that row's ids and mask.</summary>
    public M3Encoding ToEncoding(int row, ReadOnlySpan<long> ids, ReadOnlySpan<long> mask, IReadOnlyCollection<int> specialIds)
    {
        int l = SequenceLength;
        float[] dense = DenseVecs.Length == 0 ? [] : DenseVecs.AsSpan(row * HiddenSize, HiddenSize).ToArray();
        IReadOnlyDictionary<int, float> lexical = SparseWeights.Length == 0
            ? new Dictionary<int, float>()
            : LexicalWeights.FromTokenWeights(ids, SparseWeights.AsSpan(row * l, l), specialIds);
        float[][] colbert = [];
        if (ColbertVecs.Length != 0)
        {
            int tokens = 0;
            foreach (long m in mask) tokens += m != 0 ? 1 : 0;
            colbert = new float[Math.Max(tokens - 1, 0)][];
            for (int t = 0; t < colbert.Length; t++)
                colbert[t] = ColbertVecs.AsSpan((row * (l - 1) + t) * ColbertDim, ColbertDim).ToArray();
        }
        return new M3Encoding(dense, lexical, colbert);
    }
}
