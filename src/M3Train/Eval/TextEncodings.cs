using M3Train.Runtime;
using M3Train.Text;

namespace M3Train.Eval;

/// <summary>
/// M3 representations of N texts on the host, as FlagEmbedding's <c>BGEM3FlagModel.encode</c> returns them
/// (docs/METHOD.md, "Inference"), in flat arrays so a corpus costs no per-text objects beyond its lexical maps.
/// A part that was not requested is empty (<see cref="Parts"/> says which are there).
/// </summary>
/// <remarks>
/// Layout: <see cref="Dense"/> is row-major [N, <see cref="DenseDim"/>]. <see cref="Lexical"/>[i] maps token id →
/// weight (special ids and weights ≤ 0 left out). Text i's multi-vectors are rows
/// <c>ColbertOffsets[i] .. ColbertOffsets[i+1]</c> of the row-major [T, <see cref="ColbertDim"/>] array
/// <see cref="ColbertData"/>, T the total number of tokens after &lt;s&gt; (&lt;/s&gt; included).
/// </remarks>
public sealed class TextEncodings
{
    public TextEncodings(int count, EncodingParts parts, int denseDim, float[] dense, IReadOnlyDictionary<int, float>[] lexical,
        int colbertDim, long[] colbertOffsets, float[] colbertData)
    {
        if (parts.HasFlag(EncodingParts.Dense) && dense.Length != (long)count * denseDim)
            throw new ArgumentException($"dense holds {dense.Length} values, expected {count}x{denseDim}");
        if (parts.HasFlag(EncodingParts.Lexical) && lexical.Length != count)
            throw new ArgumentException($"{lexical.Length} lexical maps for {count} texts");
        if (parts.HasFlag(EncodingParts.Colbert)
            && (colbertOffsets.Length != count + 1 || colbertData.Length != colbertOffsets[^1] * colbertDim))
            throw new ArgumentException("multi-vector offsets and data do not fit together");
        Count = count;
        Parts = parts;
        DenseDim = denseDim;
        Dense = dense;
        Lexical = lexical;
        ColbertDim = colbertDim;
        ColbertOffsets = colbertOffsets;
        ColbertData = colbertData;
    }

    public int Count { get; }

    public EncodingParts Parts { get; }

    public int DenseDim { get; }

    public float[] Dense { get; }

    public IReadOnlyDictionary<int, float>[] Lexical { get; }

    public int ColbertDim { get; }

    public long[] ColbertOffsets { get; }

    public float[] ColbertData { get; }

    public ReadOnlySpan<float> DenseOf(int text) => Dense.AsSpan(text * DenseDim, DenseDim);

    /// <summary>⟨dense of text <paramref name="text"/>, dense of <paramref name="otherText"/> in <paramref name="other"/>⟩, accumulated in double.</summary>
    public double DenseDot(int text, TextEncodings other, int otherText)
    {
        ReadOnlySpan<float> a = DenseOf(text), b = other.DenseOf(otherText);
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (double)a[i] * b[i];
        return sum;
    }

    /// <summary>Number of multi-vectors of a text (its tokens after &lt;s&gt;).</summary>
    public int ColbertTokens(int text) => (int)(ColbertOffsets[text + 1] - ColbertOffsets[text]);

    /// <summary>A text's multi-vectors, row-major [tokens, <see cref="ColbertDim"/>].</summary>
    public ReadOnlySpan<float> ColbertOf(int text) =>
        ColbertData.AsSpan(checked((int)(ColbertOffsets[text] * ColbertDim)), ColbertTokens(text) * ColbertDim);

    /// <summary>
    /// The first text whose requested parts hold a NaN or infinite value, and which part; null when all are finite.
    /// A damaged or overflowing checkpoint gives such outputs, and every score and ranking made from them would be
    /// meaningless without a word.
    /// </summary>
    public (int Text, string Part)? FirstNonFinite()
    {
        for (int i = 0; i < Count; i++)
        {
            if (Parts.HasFlag(EncodingParts.Dense) && !FiniteValues.All(DenseOf(i))) return (i, "dense embedding");
            if (Parts.HasFlag(EncodingParts.Lexical) && Lexical[i].Values.Any(w => !float.IsFinite(w))) return (i, "lexical weights");
            if (Parts.HasFlag(EncodingParts.Colbert) && !FiniteValues.All(ColbertOf(i))) return (i, "multi-vectors");
        }
        return null;
    }
}
