namespace M3Train.Training;

/// <summary>
/// y = A + B·x + C·x² through measured points: a training step's peak memory (or time) against its batch size. Weights,
/// gradients and optimizer state are the constant; activations grow linearly with the batch; in-batch score tensors
/// ([B, B·G] per head) and the sparse head's bag of distinct ids grow with its square, which a line through small
/// batches misses (measured on CPU: 225 MiB, 403 MiB, 2.49 GiB at 8, 32, 128 queries).
/// </summary>
public sealed record QuadraticFit(double A, double B, double C)
{
    /// <summary>
    /// Least squares over points at two or more distinct x: a line through two, a parabola through three or more. A
    /// parabola that bends down (noise in small measurements) is replaced by the line through the two largest x, which
    /// for memory that really grows faster than linearly stays on the safe side of it.
    /// </summary>
    public static QuadraticFit Of(IReadOnlyList<(double X, double Y)> points)
    {
        var distinct = points.GroupBy(p => p.X).Select(g => (X: g.Key, Y: g.Average(p => p.Y))).OrderBy(p => p.X).ToList();
        if (distinct.Count < 2)
            throw new ArgumentException("a fit needs points at two different x at least", nameof(points));
        if (distinct.Count == 2) return Line(distinct);
        var parabola = Parabola(distinct);
        return parabola.C >= 0 ? parabola : Line(distinct.Skip(distinct.Count - 2).ToList());
    }

    public double At(double x) => A + B * x + C * x * x;

    /// <summary>
    /// The largest integer x in [1, max] with y(x) ≤ <paramref name="limit"/>, 0 if there is none. A flat or falling
    /// line (memory that did not measurably grow) allows <paramref name="max"/> when it is under the limit there.
    /// </summary>
    public int LargestWithin(double limit, int max)
    {
        double x;
        if (C > 0)
        {
            double discriminant = B * B - 4 * C * (A - limit);
            if (discriminant < 0) return 0;
            x = (-B + Math.Sqrt(discriminant)) / (2 * C);
        }
        else if (B > 0) x = (limit - A) / B;
        else return At(max) <= limit ? max : 0;
        int n = (int)Math.Clamp(Math.Floor(x), 0, max);
        while (n > 0 && At(n) > limit) n--; // rounding at the root
        return n;
    }

    static QuadraticFit Line(IReadOnlyList<(double X, double Y)> points)
    {
        double mx = points.Average(p => p.X), my = points.Average(p => p.Y);
        double sxy = points.Sum(p => (p.X - mx) * (p.Y - my)), sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        double slope = sxy / sxx;
        return new QuadraticFit(my - slope * mx, slope, 0);
    }

    /// <summary>The normal equations of y = a + b·x + c·x², solved by Cramer's rule (3 × 3).</summary>
    static QuadraticFit Parabola(IReadOnlyList<(double X, double Y)> points)
    {
        double n = points.Count, sx = 0, sx2 = 0, sx3 = 0, sx4 = 0, sy = 0, sxy = 0, sx2y = 0;
        foreach (var (x, y) in points)
        {
            double x2 = x * x;
            sx += x; sx2 += x2; sx3 += x2 * x; sx4 += x2 * x2;
            sy += y; sxy += x * y; sx2y += x2 * y;
        }
        static double Det(double a, double b, double c, double d, double e, double f, double g, double h, double i) =>
            a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
        double det = Det(n, sx, sx2, sx, sx2, sx3, sx2, sx3, sx4);
        double a = Det(sy, sx, sx2, sxy, sx2, sx3, sx2y, sx3, sx4) / det;
        double b = Det(n, sy, sx2, sx, sxy, sx3, sx2, sx2y, sx4) / det;
        double c = Det(n, sx, sy, sx, sx2, sxy, sx2, sx3, sx2y) / det;
        return new QuadraticFit(a, b, c);
    }
}
