using System.ComponentModel.DataAnnotations;

namespace M3Train.Data;

/// <summary>
/// The <c>data:</c> section: training files, group size, maximum lengths, the length-grouped batch plan
/// and the bad-input policy. Defaults are the reference fine-tuning recipe's (docs/METHOD.md, "Data" and "Length bins and the batch plan").
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

    /// <summary>
    /// Probability that a row's positive, when longer than 100 characters, is cut into 3 chunks that are shuffled
    /// (the reference's augmentation, which the BGE-M3 paper applied at 0.002 so that long documents' opening
    /// sentences do not carry the whole match); negatives are left as they are, as the reference leaves them. Default 0.
    /// </summary>
    [Range(0.0, 1.0)] public double ShuffleRatio { get; init; }

    /// <summary>Instruction prepended to every query that has no <c>prompt</c> of its own (see <see cref="UseRowPrompt"/>); null (default) prepends nothing (never the text "None").</summary>
    public string? QueryInstruction { get; init; }

    /// <summary>How instruction {0} and query {1} combine. Default "{0}{1}".</summary>
    public string QueryInstructionFormat { get; init; } = "{0}{1}";

    /// <summary>
    /// A row's own <c>prompt</c> is its query instruction, in place of <see cref="QueryInstruction"/>, as the reference
    /// reads it. Rows of type <c>symmetric_sts</c> and <c>symmetric_clustering</c> (both sides are of one kind) prefix their
    /// passages with it too. Default true.
    /// </summary>
    public bool UseRowPrompt { get; init; } = true;

    /// <summary>Instruction prepended to every passage (except those of symmetric rows, which take the query's); null (default) prepends nothing.</summary>
    public string? PassageInstruction { get; init; }

    /// <summary>How instruction {0} and passage {1} combine. Default "{0}{1}".</summary>
    public string PassageInstructionFormat { get; init; } = "{0}{1}";

    /// <summary>
    /// Files with fewer valid rows than this are small: the small files of one folder are merged into one
    /// dataset. Default 0 (no merging), as the reference's <c>small_threshold</c>.
    /// </summary>
    [Range(0, int.MaxValue)] public int SmallDatasetRows { get; init; }

    /// <summary>
    /// Train on at most this many rows of each dataset, drawn once per run from <c>train.seed</c> (FlagEmbedding's
    /// <c>max_example_num_per_dataset</c>, which draws per file from Python's global random). Null (default): every row.
    /// </summary>
    [Range(1, int.MaxValue)] public int? MaxExamplesPerDataset { get; init; }

    /// <summary>
    /// Per-file settings: entries of <c>path</c> (a data file, or a folder for the files under it) with
    /// <c>batch_size</c> (per replica, every bin) and/or <c>train_group_size</c>. The first entry covering a dataset's
    /// file applies. Default: none.
    /// </summary>
    public List<DatasetOverride> DatasetOverrides { get; init; } = [];

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
