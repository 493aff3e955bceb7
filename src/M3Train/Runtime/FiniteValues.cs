namespace M3Train.Runtime;

/// <summary>The check made on model outputs before they are used or written: a NaN or an infinity comes from damaged or overflowing weights.</summary>
public static class FiniteValues
{
    public static bool All(ReadOnlySpan<float> values)
    {
        foreach (float v in values)
            if (!float.IsFinite(v)) return false;
        return true;
    }

    /// <summary>
    /// What every verb says when a model output is NaN or infinite: <paramref name="input"/> names what was encoded,
    /// <paramref name="what"/> the output and what cannot be done with it, <paramref name="verb"/> the command to run
    /// again in fp32.
    /// </summary>
    public static string Problem(string input, string what, string verb) =>
        $"{input}: the model's {what} (the checkpoint's weights are damaged or overflow: check the model, e.g. with m3train inspect, or {verb} with --precision fp32)";
}
