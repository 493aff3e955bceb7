namespace M3Train.Data;

/// <summary>
/// One step of the plan: a global batch of rows from one dataset and one length bin. Replica r trains on
/// <see cref="Slice"/>(r): rows [r·B, (r+1)·B) with B = <see cref="ReplicaBatchSize"/>. A permuted plan finds a
/// row only when it is asked for, so a replica that takes its slice looks up its own B rows, not the whole batch.
/// </summary>
public sealed class PlannedBatch
{
    readonly Func<int, int> _rowAt;
    int[]? _rows;

    /// <param name="dataset">Index into <see cref="TrainData.Datasets"/>.</param>
    /// <param name="bin">Length bin (see <see cref="DataConfig.BinEdges"/>).</param>
    /// <param name="rows">Row indices in the dataset, the whole global batch.</param>
    /// <param name="replicaBatchSize">Queries (or texts) per replica.</param>
    /// <param name="groupSize">Passages per query (G); 0 for text rows.</param>
    /// <param name="noInBatchNegatives">Score each query against its own group only.</param>
    /// <param name="hasTeacherScores">Batches carry teacher scores [B, G].</param>
    public PlannedBatch(int dataset, int bin, int[] rows, int replicaBatchSize, int groupSize, bool noInBatchNegatives, bool hasTeacherScores)
        : this(dataset, bin, rows.Length, i => rows[i], replicaBatchSize, groupSize, noInBatchNegatives, hasTeacherScores) => _rows = rows;

    /// <param name="rowAt">The dataset row at a place in the global batch of <paramref name="globalSize"/> rows.</param>
    public PlannedBatch(int dataset, int bin, int globalSize, Func<int, int> rowAt, int replicaBatchSize, int groupSize,
        bool noInBatchNegatives, bool hasTeacherScores)
    {
        Dataset = dataset;
        Bin = bin;
        GlobalSize = globalSize;
        _rowAt = rowAt;
        ReplicaBatchSize = replicaBatchSize;
        GroupSize = groupSize;
        NoInBatchNegatives = noInBatchNegatives;
        HasTeacherScores = hasTeacherScores;
    }

    public int Dataset { get; }
    public int Bin { get; }
    public int GlobalSize { get; }
    public int ReplicaBatchSize { get; }
    public int GroupSize { get; }
    public bool NoInBatchNegatives { get; }
    public bool HasTeacherScores { get; }

    /// <summary>Row indices in the dataset, the whole global batch.</summary>
    public int[] Rows => _rows ??= Enumerable.Range(0, GlobalSize).Select(_rowAt).ToArray();

    /// <summary>The rows of replica <paramref name="rank"/>: disjoint from the others', together the whole batch.</summary>
    public ReadOnlyMemory<int> Slice(int rank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, GlobalSize / ReplicaBatchSize);
        if (_rows is { } rows) return rows.AsMemory(rank * ReplicaBatchSize, ReplicaBatchSize);
        return Enumerable.Range(rank * ReplicaBatchSize, ReplicaBatchSize).Select(_rowAt).ToArray();
    }
}
