using M3Train.Runtime;

namespace M3Train.Cli;

/// <summary>
/// The error every writer of model outputs gives when <see cref="FiniteValues"/> finds a NaN or an
/// infinity: such a value cannot be written as JSON,
/// and in a .npy it would poison every later use. It comes from damaged or overflowing weights, so the error names
/// the input line that produced it.
/// </summary>
public static class NonFiniteOutput
{
    /// <param name="file">The input file.</param>
    /// <param name="line">The line of the text (or pair, or row).</param>
    /// <param name="what">The output, e.g. "dense vector".</param>
    public static M3TrainException Error(string file, long line, string what) =>
        new(FiniteValues.Problem($"{file}:{line}", $"{what} for this input is NaN or infinite", "run") + ".");
}
