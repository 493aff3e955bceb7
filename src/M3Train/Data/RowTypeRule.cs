namespace M3Train.Data;

/// <summary>
/// What a row's <c>type</c> changes in the batch plan (<see cref="TrainGroupRules"/>): the row index keeps this
/// instead of the type string, so a type costs two bits per row.
/// </summary>
public enum RowTypeRule
{
    /// <summary>No type, or one without a rule: groups of <c>train_group_size</c>.</summary>
    None = 0,
    /// <summary><c>only_1neg</c>: groups of 2.</summary>
    OnlyOneNegative = 1,
    /// <summary><c>symmetric_class</c>: groups of min(negatives + 1, <c>train_group_size</c>).</summary>
    SymmetricClass = 2,
    /// <summary>Any other type containing "symmetric": groups of <c>train_group_size</c> (a dataset of such a type has half batches).</summary>
    Symmetric = 3,
}
