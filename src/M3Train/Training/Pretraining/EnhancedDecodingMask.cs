using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// The attention sets of RetroMAE's enhanced decoding (Xiao et al. 2022, section 3.3): query row i attends to
/// key position 0 (the sentence embedding) always, never to position i itself, and to each other token of
/// the text unless it falls in the row's own random hidden share (<see cref="PretrainConfig.DecoderMaskRatio"/>).
/// Padding keys are never seen; padding rows see position 0 only (they are not predicted, and a row must see
/// something). Row 0, the CLS slot, is not predicted either: it sees position 0 and a share of the rest.
/// Built on the mask's device from an explicit generator: no host loop, no sync.
/// Shapes: B texts, L tokens. attention_mask [B, L] → visible [B, 1, L, L] bool (true = attend), as
/// scaled_dot_product_attention takes it.
/// </summary>
public static class EnhancedDecodingMask
{
    public static Tensor Build(Tensor attentionMask, double hiddenRatio, MaskSampling sampling, Generator generator)
    {
        using var scope = NewDisposeScope();
        long b = attentionMask.shape[0], l = attentionMask.shape[1];
        var real = attentionMask.to(ScalarType.Bool);                                              // [B, L]
        var position = arange(l, device: attentionMask.device);                                   // [L]
        var notSelf = position.unsqueeze(1).ne(position.unsqueeze(0));                              // [L, L]
        var keys = real & position.gt(0);                                                          // [B, L]
        var candidates = keys.unsqueeze(1) & real.unsqueeze(2) & notSelf;                          // [B, L, L]
        var hidden = RandomPositions.Select(candidates, hiddenRatio, sampling, generator);         // [B, L, L]
        var visible = candidates & hidden.logical_not();
        visible = visible | position.eq(0).view(1, 1, l);                                           // [B, L, L]
        return visible.view(b, 1, l, l).MoveToOuterDisposeScope();                                  // [B, 1, L, L]
    }
}
