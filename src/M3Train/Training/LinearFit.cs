namespace M3Train.Training;

/// <summary>
/// y = Intercept + Slope · x by least squares: a training step's peak memory (or time) against its batch size, where
/// activations grow linearly with the batch on top of the fixed weights, gradients and optimizer state.
/// </summary>
public sealed record LinearFit(double Intercept, double Slope)
{
    /// <summary>Fits at least two distinct x.</summary>
    public static LinearFit Of(IReadOnlyList<(double X, double Y)> points)
    {
        if (points.Select(p => p.X).Distinct().Count() < 2)
            throw new ArgumentException("a line needs points at two different x at least", nameof(points));
        double mx = points.Average(p => p.X), my = points.Average(p => p.Y);
        double sxy = points.Sum(p => (p.X - mx) * (p.Y - my)), sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        double slope = sxy / sxx;
        return new LinearFit(my - slope * mx, slope);
    }

    public double At(double x) => Intercept + Slope * x;

    /// <summary>
    /// The largest integer x in [1, max] with y(x) ≤ <paramref name="limit"/>, 0 if there is none. A flat or falling line
    /// (memory that did not measurably grow) allows <paramref name="max"/> when it is under the limit there.
    /// </summary>
    public int LargestWithin(double limit, int max)
    {
        if (Slope <= 0) return At(max) <= limit ? max : 0;
        double x = Math.Floor((limit - Intercept) / Slope);
        return (int)Math.Clamp(x, 0, max);
    }
}
