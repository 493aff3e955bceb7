namespace M3Train.Checkpoints;

/// <summary>FlagEmbedding's two head files of a checkpoint, open for reading.</summary>
internal sealed record HeadFiles(ITensorFile Colbert, ITensorFile Sparse) : IDisposable
{
    public void Dispose()
    {
        Colbert.Dispose();
        Sparse.Dispose();
    }
}
