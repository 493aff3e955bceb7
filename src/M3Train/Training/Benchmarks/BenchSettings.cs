using M3Train.Model;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// One benchmark configuration (the options of <c>m3train bench</c>). A step processes B queries of Lq tokens
/// and B·G passages of Lp tokens, so it holds B·(Lq + G·Lp) tokens, as in issue 10's table.
/// </summary>
public sealed record BenchSettings
{
    /// <summary>What to measure. Default step.</summary>
    public BenchMode Mode { get; init; } = BenchMode.Step;

    /// <summary>Model shape: bge-m3, large, base or tiny (<see cref="BenchPresets"/>). Default base.</summary>
    public string Preset { get; init; } = "base";

    /// <summary>B, queries per step. Default 8.</summary>
    public int Queries { get; init; } = 8;

    /// <summary>G, passages per query. Default 8.</summary>
    public int Group { get; init; } = 8;

    /// <summary>Lq, tokens per query (with &lt;s&gt; and &lt;/s&gt;); null: 64, or the preset's positions if fewer (<see cref="QueryTokens"/>).</summary>
    public int? QueryLength { get; init; }

    /// <summary>Lp, tokens per passage; null: 512, or the preset's positions if fewer (<see cref="PassageTokens"/>).</summary>
    public int? PassageLength { get; init; }

    /// <summary>Timed steps. Default 10.</summary>
    public int Steps { get; init; } = 10;

    /// <summary>Untimed steps first (allocator, kernel selection, optimizer state). Default 3.</summary>
    public int Warmup { get; init; } = 3;

    /// <summary>Matmul precision; null: bf16 on CUDA, fp32 on CPU (as <c>train.precision: auto</c>).</summary>
    public ComputePrecision? Precision { get; init; }

    /// <summary>Activation checkpointing. Default on (the fine-tuning recipe's setting).</summary>
    public bool Checkpointing { get; init; } = true;

    /// <summary>GradCache sub-batch size in texts; null encodes the whole batch at once.</summary>
    public int? SubBatch { get; init; }

    /// <summary>cpu, cuda or cuda:N. Default cpu.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>libtorch intra-op threads (step, encode, data) or tokenizer threads (tokenize); null: libtorch's default / 1.</summary>
    public int? Threads { get; init; }

    /// <summary>Tokenizer folder for tokenize and data. Default data/models/tiny-m3.</summary>
    public string Tokenizer { get; init; } = "data/models/tiny-m3";

    /// <summary>Training data files or folders for tokenize and data. Default data/train.</summary>
    public IReadOnlyList<string> Data { get; init; } = ["data/train"];

    /// <summary>Data: the folder to keep the row index in (shared by ranks under a launch); null: a temporary one, removed at the end.</summary>
    public string? IndexDir { get; init; }

    /// <summary>Data: also plan over a synthesized index of this many rows (0: not).</summary>
    public long PlanRows { get; init; }

    /// <summary>Seed of the weights and the random tokens. Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// Data-parallel ranks to compare against one (<c>--nproc</c>): each rank runs the step on its own batch of this size and
    /// the gradients are averaged over the ranks. Default 1: no comparison.
    /// </summary>
    public int Processes { get; init; } = 1;

    /// <summary>With several ranks, start gradient all-reduces during backward as layers finish (false: all after backward). Default true.</summary>
    public bool Overlap { get; init; } = true;

    /// <summary>Lq as run: <see cref="QueryLength"/>, or 64 (FlagEmbedding's query length) cut to what the preset's positions hold.</summary>
    public int QueryTokens => QueryLength ?? Math.Min(64, BenchPresets.Config(Preset).MaxTokens);

    /// <summary>Lp as run: <see cref="PassageLength"/>, or 512 (FlagEmbedding's passage length) cut to what the preset's positions hold (tiny: 128).</summary>
    public int PassageTokens => PassageLength ?? Math.Min(512, BenchPresets.Config(Preset).MaxTokens);

    /// <summary>Tokens in one step: B·(Lq + G·Lp).</summary>
    public long TokensPerStep => (long)Queries * (QueryTokens + (long)Group * PassageTokens);

    /// <summary>Texts in one step: B + B·G.</summary>
    public long TextsPerStep => (long)Queries * (1 + Group);
}
