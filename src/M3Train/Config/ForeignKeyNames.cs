namespace M3Train.Config;

/// <summary>
/// Argument names of HF <c>TrainingArguments</c> and FlagEmbedding's BGE-M3 fine-tuning scripts that users write out
/// of habit, with the key each is here, so an unknown key names its counterpart instead of only the nearest
/// spelling. Every target is a key of the run config (a test checks it against the binder's keys).
/// </summary>
public static class ForeignKeyNames
{
    /// <summary>Foreign name → key here (and the value to give it, after a colon, where one name became a value).</summary>
    public static readonly IReadOnlyDictionary<string, string> Keys = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["model_name_or_path"] = "model.path",
        ["output_dir"] = "output_dir",
        ["learning_rate"] = "train.lr",
        ["num_train_epochs"] = "train.epochs",
        ["max_steps"] = "train.max_steps",
        ["warmup_ratio"] = "train.warmup_ratio",
        ["warmup_steps"] = "train.warmup_ratio",
        ["weight_decay"] = "train.weight_decay",
        ["adam_beta1"] = "train.adam_beta1",
        ["adam_beta2"] = "train.adam_beta2",
        ["adam_epsilon"] = "train.adam_epsilon",
        ["max_grad_norm"] = "train.max_grad_norm",
        ["gradient_accumulation_steps"] = "train.gradient_accumulation_steps",
        ["gradient_checkpointing"] = "train.activation_checkpointing",
        ["bf16"] = "train.precision: bf16",
        ["fp16"] = "train.precision",
        ["seed"] = "train.seed",
        ["save_steps"] = "train.save_every",
        ["save_total_limit"] = "train.keep_last",
        ["logging_steps"] = "train.log_every",
        ["fix_encoder"] = "train.fix_encoder",
        ["train_data"] = "data.files",
        ["per_device_train_batch_size"] = "data.batch_sizes",
        ["train_group_size"] = "data.train_group_size",
        ["query_max_len"] = "data.query_max_len",
        ["passage_max_len"] = "data.passage_max_len",
        ["query_instruction_for_retrieval"] = "data.query_instruction",
        ["query_instruction_format"] = "data.query_instruction_format",
        ["shuffle_ratio"] = "data.shuffle_ratio",
        ["small_threshold"] = "data.small_dataset_rows",
        ["drop_threshold"] = "data.drop_dataset_rows",
        ["pad_to_multiple_of"] = "data.pad_to_multiple_of",
        ["temperature"] = "loss.temperature",
        ["unified_finetuning"] = "loss.unified_finetuning",
        ["use_self_distill"] = "loss.use_self_distill",
        ["self_distill_start_step"] = "loss.self_distill_start_step",
        ["kd_loss_type"] = "loss.kd_loss_type",
        ["normalize_embeddings"] = "model.normalize_embeddings",
        ["colbert_dim"] = "model.colbert_dim",
    };

    /// <summary>Foreign names with no key here, and why.</summary>
    public static readonly IReadOnlyDictionary<string, string> Fixed = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["sentence_pooling_method"] = "the dense vector is always the CLS token's (BGE-M3's 'cls')",
    };

    /// <summary>What to say about an unknown <paramref name="key"/> that is a foreign name; null for any other key.</summary>
    public static string? Hint(string key) =>
        Keys.TryGetValue(key, out string? here) ? $"FlagEmbedding/HF '{key}' is '{here}' here"
        : Fixed.TryGetValue(key, out string? why) ? $"FlagEmbedding/HF '{key}' has no key here: {why}"
        : null;
}
