namespace M3Train.Data;

/// <summary>
/// One training row as read from a file. A <see cref="RowKind.Group"/> row has a query, at least one
/// positive, its negatives and optionally teacher scores aligned with them; a <see cref="RowKind.Text"/> row
/// has only <see cref="Text"/>.
/// </summary>
public sealed record TrainRow
{
    public RowKind Kind => Text is null ? RowKind.Group : RowKind.Text;
    public string? Query { get; init; }
    public string[] Positives { get; init; } = [];
    public string[] Negatives { get; init; } = [];
    /// <summary>Teacher scores of <see cref="Positives"/>, same length; null when the row has none.</summary>
    public float[]? PositiveScores { get; init; }
    /// <summary>Teacher scores of <see cref="Negatives"/>, same length; null when the row has none.</summary>
    public float[]? NegativeScores { get; init; }
    public string? Prompt { get; init; }
    public string? Type { get; init; }
    public string? Text { get; init; }

    /// <summary>Why the row cannot be trained on, or null when it can (see also <see cref="GroupProblem"/>).</summary>
    public string? Problem()
    {
        if (Kind == RowKind.Text) return null;
        if (Query is null) return "missing \"query\"";
        if (Positives.Length == 0) return "\"pos\" is empty";
        if (PositiveScores is null && NegativeScores is not null) return "\"neg_scores\" without \"pos_scores\"";
        if (PositiveScores is not null && PositiveScores.Length != Positives.Length)
            return $"\"pos_scores\" has {PositiveScores.Length} values for {Positives.Length} \"pos\" texts";
        if (PositiveScores is not null && (NegativeScores?.Length ?? 0) != Negatives.Length)
            return $"\"neg_scores\" has {NegativeScores?.Length ?? 0} values for {Negatives.Length} \"neg\" texts";
        return NonFinite("pos_scores", PositiveScores) ?? NonFinite("neg_scores", NegativeScores);
    }

    /// <summary>A NaN or infinite teacher score (or one beyond float's range) would make every step of its batch non-finite.</summary>
    static string? NonFinite(string name, float[]? scores)
    {
        int i = scores is null ? -1 : Array.FindIndex(scores, s => !float.IsFinite(s));
        return i < 0 ? null : $"\"{name}\"[{i}] is {scores![i].ToString(System.Globalization.CultureInfo.InvariantCulture)}, not a finite number";
    }

    /// <summary>Why a group row of <paramref name="type"/> with <paramref name="negatives"/> negatives cannot fill groups of <paramref name="groupSize"/>, or null.</summary>
    public static string? GroupProblem(string? type, int negatives, int groupSize)
    {
        int needed = type == TrainGroupRules.OnlyOneNegative ? 2 : groupSize;
        return needed > 1 && negatives == 0 ? $"\"neg\" is empty but groups have {needed} passages (train_group_size {groupSize}, type {type ?? "none"})" : null;
    }
}
