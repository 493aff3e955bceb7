namespace M3Train.Training.Benchmarks;

/// <summary>Summary of repeated timings, in seconds.</summary>
public sealed record TimingStats(double Mean, double P50, double P90, double Min, double Max, int Count)
{
    public static TimingStats Of(IReadOnlyList<double> seconds)
    {
        if (seconds.Count == 0) throw new ArgumentException("no timings");
        var sorted = seconds.Order().ToArray();
        return new TimingStats(seconds.Average(), Percentile(sorted, 0.5), Percentile(sorted, 0.9), sorted[0], sorted[^1], sorted.Length);
    }

    /// <summary>Linear interpolation between closest ranks (numpy's default).</summary>
    static double Percentile(double[] sorted, double q)
    {
        double rank = q * (sorted.Length - 1);
        int below = (int)Math.Floor(rank);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (rank - below) * (sorted[above] - sorted[below]);
    }
}
