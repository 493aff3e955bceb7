namespace M3Train.Data;

/// <summary>
/// One step of the plan: a global batch of rows from one dataset and one length bin. Replica r trains on
/// <see cref="Slice"/>(r): rows [r·B, (r+1)·B) with B = <see cref="ReplicaBatchSize"/>.
/// </summary>
/// <param name="Dataset">Index into <see cref="TrainData.Datasets"/>.</param>
/// <param name="Bin">Length bin (see <see cref="DataConfig.BinEdges"/>).</param>
/// <param name="Rows">Row indices in the dataset, the whole global batch.</param>
/// <param name="ReplicaBatchSize">Queries (or texts) per replica.</param>
/// <param name="GroupSize">Passages per query (G); 0 for text rows.</param>
/// <param name="NoInBatchNegatives">Score each query against its own group only.</param>
/// <param name="HasTeacherScores">Batches carry teacher scores [B, G].</param>
public sealed record PlannedBatch(int Dataset, int Bin, int[] Rows, int ReplicaBatchSize, int GroupSize, bool NoInBatchNegatives, bool HasTeacherScores)
{
    /// <summary>The rows of replica <paramref name="rank"/>: disjoint from the others', together the whole batch.</summary>
    public ReadOnlyMemory<int> Slice(int rank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, Rows.Length / ReplicaBatchSize);
        return Rows.AsMemory(rank * ReplicaBatchSize, ReplicaBatchSize);
    }
}
