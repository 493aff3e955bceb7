namespace M3Train.Cli;

/// <summary>A checkpoint run over queries and passages, bound once from <see cref="PairInferenceOptions"/>.</summary>
/// <param name="Run">Checkpoint, batch size, device and precision.</param>
/// <param name="MaxQueryLength">Token limit of a query, &lt;s&gt; and &lt;/s&gt; included.</param>
/// <param name="MaxPassageLength">Token limit of a passage, &lt;s&gt; and &lt;/s&gt; included.</param>
public sealed record PairInference(ModelRun Run, int MaxQueryLength, int MaxPassageLength);
