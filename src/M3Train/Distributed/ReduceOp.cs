namespace M3Train.Distributed;

/// <summary>How <see cref="ICollectives.StartAllReduce"/> combines the ranks' tensors.</summary>
public enum ReduceOp
{
    Sum,
    /// <summary>The sum divided by the world size (floating-point tensors only).</summary>
    Average,
}
