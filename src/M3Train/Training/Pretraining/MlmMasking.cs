using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// BERT-style masked-LM corruption (Devlin et al. 2019; RetroMAE's encoder input): a share
/// <see cref="Ratio"/> of each text's maskable tokens is selected; of those, <see cref="MaskTokenRatio"/> become
/// &lt;mask&gt;, <see cref="RandomTokenRatio"/> a random ordinary token, the rest stay. Special tokens and
/// padding are never selected. Runs on the inputs' device from an explicit generator.
/// Shapes: B texts, L tokens. input_ids, attention_mask [B, L] int64 → corrupted ids [B, L] int64 and labels
/// [B, L] int64 (the original id where selected, <see cref="IgnoreIndex"/> elsewhere).
/// </summary>
/// <param name="Ratio">Share of maskable tokens selected (RetroMAE's encoder: 0.3).</param>
/// <param name="MaskTokenRatio">Share of the selected replaced by <paramref name="MaskId"/> (0.8).</param>
/// <param name="RandomTokenRatio">Share of the selected replaced by a random id in [<paramref name="RandomLow"/>, <paramref name="RandomHigh"/>) (0.1).</param>
/// <param name="Sampling">How the selection count is drawn.</param>
/// <param name="MaskId">Id of &lt;mask&gt;.</param>
/// <param name="RandomLow">First ordinary token id (XLM-R: 4, after &lt;s&gt; &lt;pad&gt; &lt;/s&gt; &lt;unk&gt;).</param>
/// <param name="RandomHigh">One past the last ordinary id (XLM-R: the &lt;mask&gt; id).</param>
/// <param name="NeverMasked">Ids that are never selected: the special tokens, padding and &lt;mask&gt; itself.</param>
public sealed record MlmMasking(double Ratio, double MaskTokenRatio, double RandomTokenRatio, MaskSampling Sampling,
    long MaskId, long RandomLow, long RandomHigh, IReadOnlyList<long> NeverMasked)
{
    /// <summary>Label of positions that are not predicted (cross-entropy's ignore_index).</summary>
    public const long IgnoreIndex = -100;

    public (Tensor InputIds, Tensor Labels) Apply(Tensor inputIds, Tensor attentionMask, Generator generator)
    {
        using var scope = NewDisposeScope();
        var device = inputIds.device;
        var maskable = attentionMask.to(ScalarType.Bool);                                            // [B, L]
        foreach (long id in NeverMasked) maskable = maskable & inputIds.ne(id);
        var selected = RandomPositions.Select(maskable, Ratio, Sampling, generator);                 // [B, L]
        var labels = inputIds.masked_fill(selected.logical_not(), IgnoreIndex);                      // [B, L]

        var u = rand(inputIds.shape, dtype: ScalarType.Float32, device: device, generator: generator); // [B, L]
        var toMask = selected & u.lt(MaskTokenRatio);
        var toRandom = selected & u.ge(MaskTokenRatio) & u.lt(MaskTokenRatio + RandomTokenRatio);
        var randomIds = randint(RandomLow, RandomHigh, inputIds.shape, dtype: ScalarType.Int64, device: device, generator: generator);
        var corrupted = inputIds.masked_fill(toMask, MaskId).where(toRandom.logical_not(), randomIds); // [B, L]
        return (corrupted.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }
}
