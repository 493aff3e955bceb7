using System.Globalization;

namespace M3Train.Model;

/// <summary>Weights of the dense, sparse and multi-vector scores in <c>compute_score</c>'s combinations. Default (1, 1, 1), FlagEmbedding's.</summary>
public sealed record M3ScoreWeights(double Dense = 1.0, double Sparse = 1.0, double Colbert = 1.0)
{
    /// <summary>Parses "wd,ws,wc" (three non-negative numbers, invariant culture).</summary>
    public static M3ScoreWeights Parse(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        bool ok = parts.Length == 3;
        for (int i = 0; ok && i < 3; i++)
            ok = double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) && values[i] >= 0 && double.IsFinite(values[i]);
        if (!ok || values[0] + values[1] == 0)
            throw new M3TrainException($"weights '{text}': expected three non-negative numbers wd,ws,wc with wd + ws > 0, e.g. 0.4,0.2,0.4.");
        return new M3ScoreWeights(values[0], values[1], values[2]);
    }

    /// <summary>The form <see cref="Parse"/> reads ("1,1,1"), as help and logs show it.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Dense},{Sparse},{Colbert}");
}
