using M3Train.Training.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Losses;

/// <summary>
/// The formulas of docs/METHOD.md ("Unified loss" to "False negatives") written out as plain double loops,
/// independent of the tensor code they check. Matrices are double[rows, columns]; an excluded entry simply leaves the sums.
/// </summary>
internal static class ReferenceLosses
{
    /// <summary>Every head, as a run that names none in <c>model.heads</c> trains.</summary>
    public static IReadOnlyList<M3Head> AllHeads { get; } = [M3Head.Dense, M3Head.Sparse, M3Head.Colbert];

    public static double LogSumExp(double[,] s, int row, Func<int, bool> keep)
    {
        double max = double.NegativeInfinity;
        for (int j = 0; j < s.GetLength(1); j++) if (keep(j)) max = Math.Max(max, s[row, j]);
        double sum = 0;
        for (int j = 0; j < s.GetLength(1); j++) if (keep(j)) sum += Math.Exp(s[row, j] - max);
        return max + Math.Log(sum);
    }

    static Func<int, bool> Kept(bool[,]? exclude, int row) => j => exclude is null || !exclude[row, j];

    /// <summary>Positive column of row r: r·G when the matrix is [R, R·G], 0 when it is [R, G].</summary>
    public static int Positive(double[,] s, int r, int g) => s.GetLength(1) == g ? 0 : r * g;

    /// <summary>mean_r (lse_r - S[r, target_r]).</summary>
    public static double CrossEntropy(double[,] s, int[] targets, bool[,]? exclude = null)
    {
        double total = 0;
        for (int r = 0; r < s.GetLength(0); r++) total += LogSumExp(s, r, Kept(exclude, r)) - s[r, targets[r]];
        return total / s.GetLength(0);
    }

    public static double InfoNce(double[,] s, int g, bool[,]? exclude = null) =>
        CrossEntropy(s, Enumerable.Range(0, s.GetLength(0)).Select(r => Positive(s, r, g)).ToArray(), exclude);

    public static double[,] Softmax(double[,] s, bool[,]? exclude = null)
    {
        var p = new double[s.GetLength(0), s.GetLength(1)];
        for (int r = 0; r < s.GetLength(0); r++)
        {
            double lse = LogSumExp(s, r, Kept(exclude, r));
            for (int j = 0; j < s.GetLength(1); j++) p[r, j] = Kept(exclude, r)(j) ? Math.Exp(s[r, j] - lse) : 0;
        }
        return p;
    }

    /// <summary>-mean_r Σ_j softmax(teacher)_rj · log_softmax(student)_rj over kept columns.</summary>
    public static double SelfDistill(double[,] student, double[,] ensemble, bool[,]? exclude = null) =>
        CrossEntropyTo(student, Softmax(ensemble, exclude), exclude);

    /// <summary>-mean_r Σ_j t_rj · log_softmax(student)_rj for a fixed distribution t (the detached teacher).</summary>
    public static double CrossEntropyTo(double[,] student, double[,] t, bool[,]? exclude = null)
    {
        double total = 0;
        for (int r = 0; r < student.GetLength(0); r++)
        {
            double lse = LogSumExp(student, r, Kept(exclude, r));
            for (int j = 0; j < student.GetLength(1); j++)
                if (Kept(exclude, r)(j)) total -= t[r, j] * (student[r, j] - lse);
        }
        return total / student.GetLength(0);
    }

    /// <summary>softmax of teacher scores in group order, rows of G.</summary>
    public static double[,] TeacherTargets(double[] scores, int g)
    {
        var m = new double[scores.Length / g, g];
        for (int i = 0; i < scores.Length; i++) m[i / g, i % g] = scores[i];
        return Softmax(m);
    }

    /// <summary>
    /// m3_kd_loss: step i targets column col(r, i); the group's columns of steps before i (and excluded
    /// columns) are removed from the softmax; a step whose target is excluded adds nothing.
    /// </summary>
    public static double M3Kd(double[,] s, double[,] t, int g, bool[,]? exclude = null)
    {
        int rows = s.GetLength(0);
        double loss = 0;
        for (int i = 0; i < g; i++)
        {
            double step = 0;
            for (int r = 0; r < rows; r++)
            {
                int first = Positive(s, r, g), target = first + i;
                if (exclude is not null && exclude[r, target]) continue;
                bool Keep(int j) => Kept(exclude, r)(j) && !(j >= first && j < first + i);
                step += t[r, i] * (LogSumExp(s, r, Keep) - s[r, target]);
            }
            loss += step / rows;
        }
        return loss;
    }

    /// <summary>-mean_r Σ_i t[r,i] log_softmax(local)[r,i] (+ InfoNCE when hard).</summary>
    public static double KlDiv(double[,] s, double[,] t, int g, bool[,]? exclude = null, bool hard = true)
    {
        int rows = s.GetLength(0);
        var local = new double[rows, g];
        var localExclude = exclude is null ? null : new bool[rows, g];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < g; i++)
            {
                local[r, i] = s[r, Positive(s, r, g) + i];
                if (localExclude is not null) localExclude[r, i] = exclude![r, Positive(s, r, g) + i];
            }
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            double lse = LogSumExp(local, r, Kept(localExclude, r));
            for (int i = 0; i < g; i++)
                if (Kept(localExclude, r)(i)) total -= t[r, i] * (local[r, i] - lse);
        }
        return total / rows + (hard ? InfoNce(s, g, exclude) : 0);
    }

    public static double[,] Combine(params (double Weight, double[,] M)[] terms)
    {
        var sum = new double[terms[0].M.GetLength(0), terms[0].M.GetLength(1)];
        foreach (var (w, m) in terms)
            for (int r = 0; r < sum.GetLength(0); r++)
                for (int j = 0; j < sum.GetLength(1); j++) sum[r, j] += w * m[r, j];
        return sum;
    }

    public static double[,] Scale(double[,] m, double k) => Combine((k, m));

    public static double[,] Random(Random rng, int rows, int cols, double scale)
    {
        var m = new double[rows, cols];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) m[r, j] = scale * (2 * rng.NextDouble() - 1);
        return m;
    }

    public static Tensor ToTensor(double[,] m) => torch.tensor(m.Cast<double>().ToArray(), [m.GetLength(0), m.GetLength(1)], ScalarType.Float64);

    public static Tensor ToTensor(bool[,] m) => torch.tensor(m.Cast<bool>().ToArray(), [m.GetLength(0), m.GetLength(1)]);

    public static double Value(Tensor scalar) => scalar.to_type(ScalarType.Float64).item<double>();
}
