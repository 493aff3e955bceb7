using System.ComponentModel.DataAnnotations;

namespace M3Train.Data;

/// <summary>
/// The <c>data:</c> section: training files, group size, maximum lengths, the length-grouped batch plan
/// and the bad-input policy. Defaults are the reference fine-tuning recipe's (M3-SPEC sections 6, 7, 9).
/// The seed is the run's (<c>train.seed</c>): the plan is a pure function of (data, seed, epoch, world size).
/// </summary>
public sealed record DataConfig
{
    /// <summary>
    /// JSONL (<c>.jsonl</c>, <c>.json</c>) or Parquet (<c>.parquet</c>) files, or folders of them (searched
    /// recursively). Each file is one dataset; files under a folder whose name ends in <c>no_in_batch_neg</c>
    /// train without in-batch negatives. Default: none.
    /// </summary>
    public List<string> Files { get; init; } = [];

    /// <summary>Passages per query: 1 positive + G-1 negatives. Default 8. Pretraining pairs use 1.</summary>
    [Range(1, 1024)] public int TrainGroupSize { get; init; } = 8;

    /// <summary>Queries are truncated to this many tokens (with &lt;s&gt; and &lt;/s&gt;). Default 512.</summary>
    [Range(2, 1 << 20)] public int QueryMaxLen { get; init; } = 512;

    /// <summary>Passages and pretraining texts are truncated to this many tokens. Default 512 (long documents: 8192).</summary>
    [Range(2, 1 << 20)] public int PassageMaxLen { get; init; } = 512;

    /// <summary>
    /// Lower edges (in tokens) of the length bins after the first: bins are [0, e0), [e0, e1), ..., [eN, ∞).
    /// A row's length is the longest of its query and passages, each capped at its maximum length.
    /// Default 500, 1000, 2000, ..., 7000 (9 bins, as the reference).
    /// </summary>
    public List<int> BinEdges { get; init; } = [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000];

    /// <summary>
    /// Queries per replica in a batch, one entry per bin (longer bins get smaller batches); the global batch is
    /// this times the world size. Default: the reference's per-GPU sizes for G = 8: 48, 32, 20, 18, 14, 14, 12, 10, 8
    /// (for pretraining pairs, G = 1, it used 700, 570, 388, 288, 224, 180, 157, 128, 104).
    /// Ignored when <see cref="TokensPerBatch"/> is set.
    /// </summary>
    public List<int> BatchSizes { get; init; } = [48, 32, 20, 18, 14, 14, 12, 10, 8];

    /// <summary>
    /// When set, each bin's per-replica batch size is derived from this token budget instead of
    /// <see cref="BatchSizes"/>: the most queries B with B · (Lq + G · Lp) ≤ budget, where Lq and Lp are the
    /// bin's upper edge capped at the maximum lengths (at least 1). Default null.
    /// </summary>
    [Range(1, int.MaxValue)] public int? TokensPerBatch { get; init; }

    /// <summary>
    /// Rows larger than this many bytes (a JSONL line, or a Parquet row's texts in UTF-8) are bad rows, passed over
    /// without being read whole: one stray 50 MB line would otherwise take gigabytes to parse and tokenize.
    /// Default 8 MB (8388608).
    /// </summary>
    [Range(1024, 1 << 30)] public int MaxRowBytes { get; init; } = 8 << 20;

    /// <summary>error (default): a bad row fails the run before training with file:line and the reason; skip: it is logged and left out.</summary>
    public BadRowPolicy OnBadRow { get; init; } = BadRowPolicy.Error;

    /// <summary>Probability that a passage longer than 100 characters is cut into 3 chunks that are shuffled (the reference's augmentation). Default 0.</summary>
    [Range(0.0, 1.0)] public double ShuffleRatio { get; init; }

    /// <summary>Instruction prepended to every query; null (default) prepends nothing (never the text "None").</summary>
    public string? QueryInstruction { get; init; }

    /// <summary>How instruction {0} and query {1} combine. Default "{0}{1}".</summary>
    public string QueryInstructionFormat { get; init; } = "{0}{1}";

    /// <summary>When true, a row's own <c>prompt</c> replaces <see cref="QueryInstruction"/> for that row. Default false.</summary>
    public bool UseRowPrompt { get; init; }

    /// <summary>
    /// Files with fewer valid rows than this are small: the small files of one folder are merged into one
    /// dataset. Default 0 (no merging), as the reference's <c>small_threshold</c>.
    /// </summary>
    [Range(0, int.MaxValue)] public int SmallDatasetRows { get; init; }

    /// <summary>A merged small dataset with fewer rows than this is dropped (logged). Default 0, as the reference's <c>drop_threshold</c>.</summary>
    [Range(0, int.MaxValue)] public int DropDatasetRows { get; init; }

    /// <summary>Padded lengths are rounded up to a multiple of this (8 suits tensor cores). Default 1.</summary>
    [Range(1, 4096)] public int PadToMultipleOf { get; init; } = 1;

    /// <summary>
    /// When true and the run encodes in sub-batches (<c>train.sub_batch_size</c>), each sub-batch is also
    /// padded to its own longest text, so short sub-batches do not carry the batch's padding. Default true.
    /// </summary>
    public bool PadPerSubBatch { get; init; } = true;

    /// <summary>Batches the background producer prepares ahead of training. Default 4.</summary>
    [Range(1, 1024)] public int PrefetchBatches { get; init; } = 4;

    /// <summary>
    /// Keep each file's row index (where its rows are, their token counts: 12 bytes a row) in <c>.m3train-cache/</c>
    /// beside it, or in <see cref="IndexDir"/>, so later runs, and the other processes of this one, skip reading and
    /// tokenizing it; they map the same files. When false, each run indexes privately into the temporary folder.
    /// Default true.
    /// </summary>
    public bool CacheTokenCounts { get; init; } = true;

    /// <summary>
    /// Folder for the row index of every data file, instead of <c>.m3train-cache/</c> beside each one (for data on a
    /// read-only or slow file system). Default null.
    /// </summary>
    public string? IndexDir { get; init; }

    /// <summary>
    /// A data file is indexed in parts of this many bytes, each built by whichever process of the run takes it first
    /// and rebuilt alone when damaged. Default 256 MiB (268435456).
    /// </summary>
    [Range(1024, 1 << 30)] public int IndexPartBytes { get; init; } = 256 << 20;

    /// <summary>
    /// Up to this many rows in all, each epoch's order is made by shuffling lists of row numbers (4 bytes a row, the
    /// order of earlier versions); above, by seeded permutations computed batch by batch, in constant memory. Both
    /// are exact on resume. Default 1048576.
    /// </summary>
    [Range(0, int.MaxValue)] public int ShuffleInMemoryRows { get; init; } = 1 << 20;
}
