using M3Train.Model;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// How a checkpoint names its encoder tensors, so a save writes back the keys it was loaded with:
/// <see cref="EncoderKeys"/> in file order (with the <c>roberta.</c> prefix of masked-LM checkpoints
/// where it was there), and <see cref="Passthrough"/> tensors M3 does not use (<c>pooler.*</c>,
/// <c>embeddings.position_ids</c>, unexpected keys that were allowed) written back unchanged.
/// Owns the passthrough tensors.
/// </summary>
public sealed class CheckpointLayout : IDisposable
{
    /// <summary>Prefix of masked-LM checkpoints' encoder keys.</summary>
    public const string MaskedLmPrefix = "roberta.";

    public CheckpointLayout(string keyPrefix, IReadOnlyList<string> encoderKeys, IReadOnlyDictionary<string, Tensor> passthrough)
    {
        KeyPrefix = keyPrefix;
        EncoderKeys = encoderKeys;
        Passthrough = passthrough;
    }

    /// <summary>"" or <see cref="MaskedLmPrefix"/>.</summary>
    public string KeyPrefix { get; }

    /// <summary>Every key of the encoder file, in its order.</summary>
    public IReadOnlyList<string> EncoderKeys { get; }

    /// <summary>Tensors written back as loaded.</summary>
    public IReadOnlyDictionary<string, Tensor> Passthrough { get; }

    /// <summary>The layout of a model that was not loaded: HF <c>XLMRobertaModel</c> keys, plus <c>lm_head.*</c> if it has one.</summary>
    public static CheckpointLayout For(M3Model model)
    {
        var keys = model.named_parameters()
            .Select(p => p.name)
            .Where(n => n.StartsWith(M3Keys.Encoder, StringComparison.Ordinal) || n.StartsWith(M3Keys.LmHead, StringComparison.Ordinal))
            .Select(n => n.StartsWith(M3Keys.Encoder, StringComparison.Ordinal) ? n[M3Keys.Encoder.Length..] : n)
            .ToList();
        return new CheckpointLayout("", keys, new Dictionary<string, Tensor>());
    }

    public void Dispose()
    {
        foreach (var t in Passthrough.Values) t.Dispose();
    }
}
