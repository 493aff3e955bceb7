using System.ComponentModel.DataAnnotations;
using M3Train.Config;

namespace M3Train.Training;

/// <summary>Numeric precision of the forward/backward pass; master weights and the optimizer stay fp32.</summary>
public enum Precision
{
    /// <summary>bf16 on CUDA, fp32 on CPU (bf16 matmuls are slow on most CPUs).</summary>
    Auto,
    Fp32,
    Bf16,
    /// <summary>fp16 matmuls with dynamic loss scaling (<see cref="LossScaler"/>), for GPUs without bf16 (V100, T4): FlagEmbedding's <c>--fp16</c>.</summary>
    Fp16,
}

/// <summary>Shape of the learning-rate warmup.</summary>
public enum WarmupShape
{
    /// <summary>lr grows linearly from 0 to the peak.</summary>
    Linear,
    /// <summary>lr = peak · log(step + 1) / log(warmup steps), as DeepSpeed's WarmupDecayLR with warmup_type "log".</summary>
    Log,
}

/// <summary>
/// The <c>train:</c> section: optimizer, schedule, length of the run, precision, memory, checkpoints and logging.
/// Defaults are the reference fine-tuning recipe's (docs/METHOD.md, "Schedule and defaults").
/// </summary>
public sealed record TrainConfig : IConfigValidatable
{
    /// <summary>Peak learning rate. Default 1e-5.</summary>
    [Range(0.0, 1.0, MinimumIsExclusive = true)] public double Lr { get; init; } = 1e-5;

    /// <summary>
    /// End this invocation after this many optimizer steps (with a checkpoint) while keeping the schedule of the
    /// whole run, e.g. to train in time slices; <c>--resume latest</c> continues. Null: run to the end.
    /// </summary>
    [Range(1, int.MaxValue)] public int? StopAfter { get; init; }

    /// <summary>Passes over the data. Default 4. Ignored when <see cref="MaxSteps"/> is set.</summary>
    [Range(1, 100000)] public int Epochs { get; init; } = 4;

    /// <summary>Stop after this many optimizer steps (null: run <see cref="Epochs"/> epochs).</summary>
    [Range(1, int.MaxValue)] public int? MaxSteps { get; init; }

    /// <summary>Share of all steps spent warming the learning rate up. Default 0.1.</summary>
    [Range(0.0, 1.0)] public double WarmupRatio { get; init; } = 0.1;

    /// <summary>Warmup shape: linear (default) or log.</summary>
    public WarmupShape Warmup { get; init; } = WarmupShape.Linear;

    /// <summary>AdamW decoupled weight decay, not applied to biases and LayerNorm weights. Default 0.</summary>
    [Range(0.0, 1.0)] public double WeightDecay { get; init; }

    /// <summary>AdamW β1. Default 0.9.</summary>
    [Range(0.0, 1.0, MaximumIsExclusive = true)] public double AdamBeta1 { get; init; } = 0.9;

    /// <summary>AdamW β2. Default 0.999.</summary>
    [Range(0.0, 1.0, MaximumIsExclusive = true)] public double AdamBeta2 { get; init; } = 0.999;

    /// <summary>AdamW ε. Default 1e-8.</summary>
    [Range(0.0, 1.0, MinimumIsExclusive = true)] public double AdamEpsilon { get; init; } = 1e-8;

    /// <summary>Clip the global gradient norm to this (0: no clipping). Default 1.0.</summary>
    [Range(0.0, 1e6)] public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Micro-batches whose gradients are summed before each optimizer step. Default 1.</summary>
    [Range(1, 100000)] public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, or fp16 (with dynamic loss scaling: <see cref="LossScaleInitial"/>, <see cref="LossScaleWindow"/>).</summary>
    public Precision Precision { get; init; } = Precision.Auto;

    /// <summary>fp16 only: the loss scale the run starts from (halved at each step whose gradients overflow, at least 1). Default 65536 (2^16), as PyTorch's GradScaler.</summary>
    [Range(1.0, 1e38)] public double LossScaleInitial { get; init; } = 65536;

    /// <summary>fp16 only: steps without an overflow after which the loss scale doubles. Default 2000, as PyTorch's GradScaler.</summary>
    [Range(1, int.MaxValue)] public int LossScaleWindow { get; init; } = 2000;

    /// <summary>Recompute each encoder layer in the backward pass instead of keeping its activations. Default true.</summary>
    public bool ActivationCheckpointing { get; init; } = true;

    /// <summary>GradCache sub-batch size in texts (null: encode the whole batch at once). Memory is bounded by one sub-batch.</summary>
    [Range(1, int.MaxValue)] public int? SubBatchSize { get; init; }

    /// <summary>
    /// GradCache sub-batch size per length bin (one entry per bin of <c>data.bin_edges</c>; 0: that bin's batch in one
    /// pass), in place of <see cref="SubBatchSize"/>: short bins need none, long ones small ones (8 queries x 8 passages
    /// x 8192 tokens fit only a few texts at a time). Each sub-batch is a slice of its batch, padded as the batch is.
    /// <c>m3train probe-batch</c> fills them in. Default: none.
    /// </summary>
    public List<int> SubBatchSizes { get; init; } = [];

    /// <summary>Train only the heads (the reference's <c>fix_encoder</c>). Same as <c>freeze: [encoder]</c>.</summary>
    public bool FixEncoder { get; init; }

    /// <summary>Parts kept fixed: any of encoder, sparse, colbert.</summary>
    public List<string> Freeze { get; init; } = [];

    /// <summary>Seed of the data order, dropout and head initialization. Default 42.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Device: cpu, cuda or cuda:N.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// Data parallelism on this machine: one process (rank) per device listed (e.g. [cuda:0, cuda:1], or [cuda] for every
    /// visible GPU), which <c>m3train finetune/pretrain</c> start themselves; under <c>m3train launch</c>, torchrun or srun
    /// each rank takes the entry of its local rank. Empty: <see cref="Device"/> (with <c>cuda</c>, each launched rank its own GPU).
    /// </summary>
    public List<string> Devices { get; init; } = [];

    /// <summary>
    /// CPU threads per libtorch operator (intra-op), per rank. Null: the rank's share of the cores (all of them, or
    /// cores / ranks when several ranks run on one machine) less one for libtorch's inter-op pool and one for its data
    /// loader, at least 1, so the ranks together never ask for more threads than there are cores.
    /// </summary>
    [Range(1, 4096)] public int? Threads { get; init; }

    /// <summary>Log metrics every this many optimizer steps. Default 10.</summary>
    [Range(1, int.MaxValue)] public int LogEvery { get; init; } = 10;

    /// <summary>Write a checkpoint every this many optimizer steps (0: only at the end). Default 500.</summary>
    [Range(0, int.MaxValue)] public int SaveEvery { get; init; } = 500;

    /// <summary>How many step checkpoints to keep (older ones are deleted). Default 3.</summary>
    [Range(1, 10000)] public int KeepLast { get; init; } = 3;

    /// <summary>Abort after this many non-finite losses in a row (each one skips its step). Default 5.</summary>
    [Range(1, 10000)] public int MaxBadStepsInARow { get; init; } = 5;

    /// <summary>Warn when at least this share of a logged step's texts have an all-zero sparse vector (see <see cref="SparseZeroWindow"/>). Default 0.5.</summary>
    [Range(0.0, 1.0)] public double SparseZeroWarning { get; init; } = 0.5;

    /// <summary>How many logged steps in a row <see cref="SparseZeroWarning"/> must be reached before the warning. Default 3.</summary>
    [Range(1, 10000)] public int SparseZeroWindow { get; init; } = 3;

    /// <summary>
    /// Warn when a logged step's mean dense score of positives is less than this above that of negatives while the
    /// negatives score at least 0.95 (all CLS embeddings alike: a collapsed dense head; see <see cref="DenseCollapseWindow"/>). Default 0.02.
    /// </summary>
    [Range(0.0, 2.0)] public double DenseCollapseGap { get; init; } = 0.02;

    /// <summary>How many logged steps in a row the dense head must look collapsed (<see cref="DenseCollapseGap"/>) before the warning. Default 3.</summary>
    [Range(1, 10000)] public int DenseCollapseWindow { get; init; } = 3;

    /// <summary>Write TensorBoard event files into the run folder. Default true.</summary>
    public bool Tensorboard { get; init; } = true;

    /// <summary>Retrieval evaluation on a BEIR set during training (off unless a set is given).</summary>
    public TrainEvalConfig Eval { get; init; } = new();

    /// <summary>Keep the model of the best evaluation by a named figure in OUTPUT/best (off unless a metric is given).</summary>
    public SaveBestConfig SaveBest { get; init; } = new();

    public IEnumerable<(string Key, string Message)> Validate()
    {
        string[] parts = ["encoder", "sparse", "colbert"];
        foreach (var f in Freeze.Where(f => !parts.Contains(f)))
            yield return ("freeze", $"'{f}' is not one of {string.Join(", ", parts)}.");
        if (SubBatchSizes.Count > 0 && SubBatchSize is not null)
            yield return ("sub_batch_sizes", "set either sub_batch_size (every bin) or sub_batch_sizes (per bin), not both.");
        if (SubBatchSizes.Any(s => s < 0))
            yield return ("sub_batch_sizes", $"[{string.Join(", ", SubBatchSizes)}]: sizes are texts per sub-batch, at least 1 (0: no sub-batches in that bin).");
        if (SaveBest.Metric is { } metric)
        {
            if (!Eval.Enabled)
                yield return ("save_best.metric", $"'{metric}' comes from evaluations during training: set train.eval.beir (or its three files) too.");
            else if (!TrainingEvaluator.FigureNames(Eval).Contains(metric))
                yield return ("save_best.metric", $"'{metric}' is not a figure train.eval writes; it writes {string.Join(", ", TrainingEvaluator.FigureNames(Eval))}.");
        }
    }

    /// <summary>Freeze set after folding <see cref="FixEncoder"/> in.</summary>
    public IReadOnlySet<string> FrozenParts() =>
        FixEncoder ? Freeze.Append("encoder").ToHashSet() : Freeze.ToHashSet();
}
