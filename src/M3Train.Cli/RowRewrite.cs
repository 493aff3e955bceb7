namespace M3Train.Cli;

/// <summary>What a data-preparation verb (mine, teacher-scores) reads, runs and writes, bound once from <see cref="RowRewriteOptions"/>.</summary>
/// <param name="Inference">The checkpoint run over the rows' queries and passages.</param>
/// <param name="Input">Fine-tuning rows.</param>
/// <param name="Output">Where the enriched rows go.</param>
public sealed record RowRewrite(PairInference Inference, FileInfo Input, FileInfo Output);
