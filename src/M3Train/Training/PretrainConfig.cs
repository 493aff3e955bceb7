using System.ComponentModel.DataAnnotations;
using M3Train.Config;

namespace M3Train.Training;

/// <summary>
/// The <c>pretrain:</c> section, read by <c>m3train pretrain</c>: which objective, and
/// RetroMAE's masking and decoder settings. Defaults are RetroMAE's (Xiao et al. 2022) as BGE-M3 used it.
/// The contrastive objective takes its temperature from <c>loss.temperature</c>, its batches from
/// <c>data.batch_sizes</c> (the reference's unsupervised per-bin sizes: <see cref="UnsupervisedBatchSizes"/>) and needs
/// <c>train.sub_batch_size</c>.
/// </summary>
public sealed record PretrainConfig : IConfigValidatable
{
    /// <summary>The reference's per-GPU batch sizes for unsupervised pairs (G = 1), one per length bin: 700, 570, 388, 288, 224, 180, 157, 128, 104.</summary>
    public static IReadOnlyList<int> UnsupervisedBatchSizes { get; } = [700, 570, 388, 288, 224, 180, 157, 128, 104];

    /// <summary>retromae (default) on <c>{"text"}</c> rows, or contrastive on <c>{"query", "pos"}</c> pairs.</summary>
    public PretrainObjective Objective { get; init; } = PretrainObjective.Retromae;

    /// <summary>Share of each text's maskable tokens (all but &lt;s&gt;, &lt;/s&gt;, &lt;pad&gt;, &lt;unk&gt;, &lt;mask&gt;) the encoder predicts (MLM). Default 0.3.</summary>
    [Range(0.0, 1.0, MinimumIsExclusive = true)] public double EncoderMaskRatio { get; init; } = 0.3;

    /// <summary>Of the encoder's selected tokens, the share replaced by &lt;mask&gt;. Default 0.8 (BERT's 80/10/10).</summary>
    [Range(0.0, 1.0)] public double MaskTokenRatio { get; init; } = 0.8;

    /// <summary>Of the encoder's selected tokens, the share replaced by a random ordinary token; the rest stay as they are. Default 0.1.</summary>
    [Range(0.0, 1.0)] public double RandomTokenRatio { get; init; } = 0.1;

    /// <summary>
    /// Share of the other tokens of the text each decoder row does not see (its attention set is the CLS plus
    /// the rest, never the row itself). Default 0.5.
    /// </summary>
    [Range(0.0, 1.0, MaximumIsExclusive = true)] public double DecoderMaskRatio { get; init; } = 0.5;

    /// <summary>How both ratios pick positions: exact (default: a fixed count per row, as RetroMAE) or bernoulli.</summary>
    public MaskSampling MaskSampling { get; init; } = MaskSampling.Exact;

    /// <summary>
    /// Tokens whose LM logits ([tokens, V]) RetroMAE's two losses make at once; backward runs chunk by chunk, so
    /// memory holds one chunk's logits instead of every predicted token's (V = 250,002 for XLM-R: 1 GB per 1024
    /// tokens in fp32). 0: all at once. Gradients are the same either way. Each chunk reads the tied [V, D] embedding
    /// matrix again (a cast under bf16, a gradient accumulation), so chunks far below 1024 cost time. Default 1024.
    /// </summary>
    [Range(0, int.MaxValue)] public int LmLossChunk { get; init; } = 1024;

    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (MaskTokenRatio + RandomTokenRatio > 1.0 + 1e-12)
            yield return ("random_token_ratio", $"mask_token_ratio {MaskTokenRatio} + random_token_ratio {RandomTokenRatio} exceed 1.");
    }
}
