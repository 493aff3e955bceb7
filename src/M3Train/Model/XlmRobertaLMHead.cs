using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// The masked-LM head of <c>XLMRobertaForMaskedLM</c> (keys <c>lm_head.dense</c>, <c>lm_head.layer_norm</c>,
/// <c>lm_head.bias</c>): dense, GELU, LayerNorm, then the decoder, whose weight is tied to the word
/// embeddings and therefore passed in rather than owned.
/// H [B, L, D], word embeddings [V, D] → logits [B, L, V] fp32.
/// </summary>
public sealed class XlmRobertaLMHead : nn.Module<Tensor, Tensor, Tensor>
{
    readonly Linear dense;
    readonly LayerNorm layer_norm;
    readonly Parameter bias;
    readonly ComputeSettings _compute;

    public XlmRobertaLMHead(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaLMHead))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        bias = nn.Parameter(zeros(config.VocabSize));
        _compute = compute;
        RegisterComponents();
        using var noGrad = no_grad();
        nn.init.normal_(dense.weight!, 0.0, config.InitializerRange);
        dense.bias!.zero_();
    }

    public override Tensor forward(Tensor hidden, Tensor wordEmbeddings)
    {
        using var scope = NewDisposeScope();
        var x = nn.functional.gelu(_compute.Linear(dense, hidden));
        x = ComputeSettings.LayerNorm(layer_norm, x);
        var type = _compute.MatmulType;
        var logits = nn.functional.linear(x.to(type), wordEmbeddings.to(type), bias.to(type)); // [B, L, V]
        return logits.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}
