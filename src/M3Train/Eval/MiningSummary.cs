namespace M3Train.Eval;

/// <summary>What <see cref="HardNegativeMiner"/> did, for the log.</summary>
/// <param name="Rows">Rows mined.</param>
/// <param name="PoolSize">Distinct candidate texts searched.</param>
/// <param name="Candidates">Candidates in the rank ranges of all rows, before filtering.</param>
/// <param name="DroppedPositiveOrQuery">Candidates that were a positive of their row or its query text.</param>
/// <param name="DroppedRelativeMargin">Ranked candidates scoring above positive × (1 - relative margin).</param>
/// <param name="DroppedAbsoluteMargin">Ranked candidates scoring above positive - absolute margin, not already dropped by the relative margin.</param>
/// <param name="RowsPadded">Rows that needed random pool texts to reach the requested number of negatives.</param>
/// <param name="PaddingNegatives">Random texts added in all.</param>
/// <param name="RowsShort">Rows left with some negatives but fewer than requested: no pool text is left that is not a
/// positive, the query or already taken and that passes the score filters (padding texts must pass them too).</param>
/// <param name="RowsEmpty">Rows left with no negative at all after the range, the filters and the padding
/// (<see cref="MiningOptions.OnEmpty"/> says what became of them).</param>
/// <param name="RowsFilled">Empty rows given random pool texts by <see cref="EmptyNegativesPolicy.Fill"/>.</param>
/// <param name="FillNegatives">Random texts those rows got in all.</param>
/// <param name="RowsDropped">Rows left out of the output.</param>
public sealed record MiningSummary(
    int Rows,
    int PoolSize,
    long Candidates,
    long DroppedPositiveOrQuery,
    long DroppedRelativeMargin,
    long DroppedAbsoluteMargin,
    int RowsPadded,
    long PaddingNegatives,
    int RowsShort,
    int RowsEmpty,
    int RowsFilled,
    long FillNegatives,
    int RowsDropped);
