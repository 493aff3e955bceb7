namespace M3Train.Training.Benchmarks;

/// <summary>
/// One row of issue 10's reference table: FlagEmbedding (PyTorch) unified fine-tuning with self-distillation of
/// a BGE-M3-sized model (V 250002, D 1024, 24 layers, 8194 positions) on one NVIDIA H200, bf16, activation
/// checkpointing, random tokens without padding. These are measured numbers from another machine, kept as data
/// so a bench run on the same configuration can report its ratio to them.
/// </summary>
public sealed record FlagEmbeddingAnchor(int Queries, int Group, int QueryLength, int PassageLength,
    double StepSeconds, double TokensPerSecond, double PeakGiB)
{
    public const string Source =
        "FlagEmbedding (PyTorch), measured on one NVIDIA H200: BGE-M3 size, bf16, activation checkpointing, " +
        "unified fine-tuning with self-distillation, random tokens, no padding (issue 10)";

    /// <summary>Issue 10's goals: at least this multiple of the anchor's tokens/s ...</summary>
    public const double TokensPerSecondGoal = 1.5;

    /// <summary>... at most this fraction of its peak memory.</summary>
    public const double PeakMemoryGoal = 0.5;

    public static IReadOnlyList<FlagEmbeddingAnchor> Table { get; } =
    [
        new(8, 8, 64, 512, 0.42, 79_000, 40.9),
        new(2, 8, 64, 2048, 0.47, 71_000, 40.9),
        new(1, 8, 64, 8192, 1.50, 44_000, 74.7),
        new(1, 2, 64, 8192, 0.46, 36_000, 23.9),
    ];

    /// <summary>
    /// The row of <paramref name="s"/>'s workload, if any: a bge-m3 training step in bf16 on the same B, G, Lq, Lp.
    /// How the work is done (checkpointing, sub-batches) is this side's choice and is not matched: the goal is
    /// the same training step faster and in less memory; the report's settings say how.
    /// </summary>
    public static FlagEmbeddingAnchor? Match(BenchSettings s, Model.ComputePrecision precision) =>
        s.Mode == BenchMode.Step && s.Preset == "bge-m3" && precision == Model.ComputePrecision.BFloat16
            ? Table.FirstOrDefault(a => a.Queries == s.Queries && a.Group == s.Group && a.QueryLength == s.QueryTokens && a.PassageLength == s.PassageTokens)
            : null;
}
