namespace M3Train.Checkpoints;

/// <summary>How <see cref="PositionExtension"/> fills the rows it adds to the position table.</summary>
public enum PositionExtensionMethod
{
    /// <summary>
    /// Keep every row and repeat the learned rows (2, 3, ..., P-1) cyclically after them: row r ≥ P gets
    /// row 2 + (r - 2) mod (P - 2). Texts that fit the old table encode exactly as before.
    /// </summary>
    Copy,

    /// <summary>
    /// Stretch the learned rows over the new length by linear interpolation (position interpolation): learned
    /// row j of P' - 2 samples the old learned rows at j · (P - 3) / (P' - 3). Keeps the first and last learned
    /// rows; every short text sees different position vectors than before, so it needs training to recover.
    /// </summary>
    Interpolate,
}
