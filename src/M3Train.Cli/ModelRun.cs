namespace M3Train.Cli;

/// <summary>Which checkpoint runs where, bound once from <see cref="ModelRunOptions"/>.</summary>
/// <param name="Model">The checkpoint (or, for <c>encode --backend onnx</c>, export) folder.</param>
/// <param name="BatchSize">Most texts per forward pass.</param>
/// <param name="Device">cpu, cuda or cuda:N.</param>
/// <param name="Precision">Matmul precision: fp32 or bf16.</param>
/// <param name="QueryInstruction">Prepended to every query before it is encoded; null: nothing.</param>
/// <param name="Threads">CPU threads per operator, or null for <see cref="Runtime.ComputeThreads.Default"/>.</param>
public sealed record ModelRun(DirectoryInfo Model, int BatchSize, string Device, string Precision, string? QueryInstruction = null, int? Threads = null)
{
    /// <summary>A query as it is encoded: with <see cref="QueryInstruction"/> before it.</summary>
    public string Query(string text) => QueryInstruction + text;
}
