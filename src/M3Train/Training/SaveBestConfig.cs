using M3Train.Config;

namespace M3Train.Training;

/// <summary>Which way a figure improves.</summary>
public enum BestMode
{
    /// <summary>Higher is better (nDCG, recall, MRR).</summary>
    Max,
    /// <summary>Lower is better.</summary>
    Min,
}

/// <summary>
/// The <c>train.save_best:</c> section: after each evaluation (<see cref="TrainEvalConfig"/>) whose <see cref="Metric"/>
/// beats every earlier one, the model is written to <c>OUTPUT/best</c> (an HF/FlagEmbedding folder like
/// <c>final</c>, with <c>best.json</c> naming the step and the figure), outside the checkpoints that
/// <c>train.keep_last</c> prunes. Off unless <see cref="Metric"/> is set.
/// </summary>
public sealed record SaveBestConfig : IConfigValidatable
{
    /// <summary>The evaluation figure to keep the best model by, as metrics.jsonl names it, e.g. eval_dense_ndcg@10. Null: keep no best model.</summary>
    public string? Metric { get; init; }

    /// <summary>max (higher is better, the default) or min.</summary>
    public BestMode Mode { get; init; } = BestMode.Max;

    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (Metric is not null && !Metric.StartsWith("eval_", StringComparison.Ordinal))
            yield return ("metric", $"'{Metric}' is not an evaluation figure: expected eval_MODE_ndcg@10, eval_MODE_recall@100 or eval_MODE_mrr@10 (MODE one of train.eval.modes).");
    }
}
