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
}
