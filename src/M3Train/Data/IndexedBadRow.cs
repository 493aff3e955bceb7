namespace M3Train.Data;

/// <summary>
/// A bad row as the row index keeps it. A row whose negatives cannot fill a group is kept by its type
/// (<paramref name="Reason"/> null) and described with the run's <c>train_group_size</c>, which may differ from the
/// one the index was built with (any size above 1 makes the same rows bad).
/// </summary>
/// <param name="Line">Line (JSONL) or row (Parquet) number in its part, from 1.</param>
/// <param name="Reason">Why it cannot be trained on; null for an empty "neg" list.</param>
/// <param name="GroupType">The row's type when <paramref name="Reason"/> is null.</param>
public readonly record struct IndexedBadRow(long Line, string? Reason, string? GroupType)
{
    public string Describe(int groupSize) =>
        Reason ?? TrainRow.GroupProblem(GroupType, 0, groupSize) ?? $"\"neg\" is empty (type {GroupType ?? "none"})";
}
