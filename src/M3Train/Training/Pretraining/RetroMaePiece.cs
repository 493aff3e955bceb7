using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// One sub-batch of a RetroMAE step after masking (B texts, L tokens): the text <see cref="InputIds"/> and
/// <see cref="Mask"/> [B, L], the encoder's corrupted input <see cref="MaskedIds"/> and targets
/// <see cref="MlmLabels"/> [B, L], the decoder's targets <see cref="DecoderLabels"/> [B, L], the generator that
/// drew the masks (it draws the decoder's attention sets next), the piece's seed, and its predicted-token counts (0-d).
/// </summary>
internal sealed record RetroMaePiece(Tensor InputIds, Tensor Mask, Tensor MaskedIds, Tensor MlmLabels, Tensor DecoderLabels,
    Generator Generator, long Seed, Tensor MlmTokens, Tensor DecoderTokens) : IDisposable
{
    public void Dispose()
    {
        foreach (var t in new[] { InputIds, Mask, MaskedIds, MlmLabels, DecoderLabels, MlmTokens, DecoderTokens }) t.Dispose();
        Generator.Dispose();
    }
}
