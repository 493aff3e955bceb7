namespace M3Train.Training.Pretraining;

/// <summary>
/// What each pretraining objective runs with where its config says nothing, in place of the fine-tuning defaults the
/// config records carry (lr 1e-5, weight decay 0, passages of 512 tokens, batches for groups of 8): the settings BGE-M3
/// pretrained with (docs/METHOD.md, "Pretraining"). As <c>--set</c> strings, applied by <see cref="PretrainRecipe.LoadConfig"/>.
/// </summary>
public static class PretrainDefaults
{
    /// <summary>RetroMAE on texts up to 8192 tokens at lr 7e-5 (the paper; RetroMAE's own recipe for warmup and weight decay).</summary>
    public static IReadOnlyList<string> Retromae { get; } =
        ["train.lr=7e-5", "train.warmup_ratio=0.1", "train.weight_decay=0.01", "data.passage_max_len=8192"];

    /// <summary>
    /// Dense InfoNCE on pairs (G = 1): lr 5e-5, warmup 0.1, weight decay 0.01, queries/passages up to 512/8192 tokens,
    /// and the reference's per-GPU batch sizes for unsupervised pairs.
    /// </summary>
    public static IReadOnlyList<string> Contrastive { get; } =
    [
        "train.lr=5e-5", "train.warmup_ratio=0.1", "train.weight_decay=0.01", "data.train_group_size=1",
        "data.query_max_len=512", "data.passage_max_len=8192", $"data.batch_sizes=[{string.Join(",", PretrainConfig.UnsupervisedBatchSizes)}]",
    ];

    public static IReadOnlyList<string> For(PretrainObjective objective) => objective == PretrainObjective.Retromae ? Retromae : Contrastive;
}
