namespace M3Train.Data;

/// <summary>
/// The reference's <c>type</c> rules (docs/METHOD.md, "Data"): <c>only_1neg</c> trains with G = 2;
/// <c>symmetric_class</c> with G = min(negatives + 1, G); any type containing "symmetric" halves the batch size.
/// </summary>
public static class TrainGroupRules
{
    public const string OnlyOneNegative = "only_1neg";
    public const string SymmetricClass = "symmetric_class";

    /// <summary>Types whose passages are the same kind of text as the query, so they take the query's instruction.</summary>
    public static readonly IReadOnlySet<string> SymmetricTexts = new HashSet<string>(StringComparer.Ordinal) { "symmetric_sts", "symmetric_clustering" };

    /// <summary>The rule of a row of <paramref name="type"/>.</summary>
    public static RowTypeRule RuleOf(string? type) => type switch
    {
        OnlyOneNegative => RowTypeRule.OnlyOneNegative,
        SymmetricClass => RowTypeRule.SymmetricClass,
        not null when IsSymmetric(type) => RowTypeRule.Symmetric,
        _ => RowTypeRule.None,
    };

    /// <summary>Group size of a batch whose first row has <paramref name="rule"/> and <paramref name="negatives"/> negatives.</summary>
    public static int GroupSize(RowTypeRule rule, int negatives, int configuredGroupSize) => rule switch
    {
        RowTypeRule.OnlyOneNegative => 2,
        RowTypeRule.SymmetricClass => Math.Min(negatives + 1, configuredGroupSize),
        _ => configuredGroupSize,
    };

    /// <summary>Per-replica batch size of a dataset whose first row has <paramref name="type"/>.</summary>
    public static int BatchSize(string? type, int binBatchSize) =>
        type is not null && IsSymmetric(type) ? Math.Max(1, binBatchSize / 2) : binBatchSize;

    static bool IsSymmetric(string type) => type.Contains("symmetric", StringComparison.Ordinal);
}
