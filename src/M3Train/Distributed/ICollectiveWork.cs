namespace M3Train.Distributed;

/// <summary>A collective in flight. Its tensors must stay alive, and untouched, until <see cref="Wait"/> returns.</summary>
public interface ICollectiveWork
{
    bool IsCompleted { get; }

    /// <summary>Blocks until the collective's result is in its tensors, or throws <see cref="DistributedException"/> naming the failed rank.</summary>
    void Wait();
}
