using System.Globalization;

namespace M3Train.Eval;

/// <summary>
/// Weights of the three M3 scores in a hybrid score, FlagEmbedding's <c>weights_for_different_modes</c> order
/// (dense, sparse, colbert). <see cref="Combine"/> is <c>compute_score</c>'s <c>colbert+sparse+dense</c>:
/// <c>(w_d·d + w_s·s + w_c·c) / (w_d + w_s + w_c)</c>.
/// </summary>
public sealed record HybridWeights(double Dense, double Sparse, double Colbert)
{
    /// <summary>The BGE-M3 paper's MIRACL/MKQA weights (1, 0.3, 1): dense+sparse uses (1, 0.3), all three (1, 0.3, 1).</summary>
    public static HybridWeights Paper { get; } = new(1.0, 0.3, 1.0);

    /// <summary>FlagEmbedding's <c>compute_score</c> default (0.4, 0.2, 0.4).</summary>
    public static HybridWeights ComputeScoreDefault { get; } = new(0.4, 0.2, 0.4);

    public double Combine(double dense, double sparse, double colbert) =>
        (Dense * dense + Sparse * sparse + Colbert * colbert) / (Dense + Sparse + Colbert);

    /// <summary>Parses <c>"wd,ws,wc"</c>; <paramref name="source"/> names the option in errors.</summary>
    public static HybridWeights Parse(string text, string source = "--weights")
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || values[i] < 0 || !double.IsFinite(values[i]))
                throw new M3TrainException($"{source} {text}: '{parts[i]}' is not a non-negative number");
        if (values.Length != 3)
            throw new M3TrainException($"{source} {text}: expected three weights 'dense,sparse,colbert', found {values.Length}");
        if (values.Sum() <= 0)
            throw new M3TrainException($"{source} {text}: at least one weight must be positive");
        return new HybridWeights(values[0], values[1], values[2]);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Dense},{Sparse},{Colbert}");
}
