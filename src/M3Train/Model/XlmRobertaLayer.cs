using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// One post-LN transformer block (HF <c>XLMRobertaLayer</c>): attention, then FFN, each with
/// residual and LayerNorm. hidden [B, L, D] fp32, keyMask [B, 1, 1, L] bool or null → [B, L, D] fp32.
/// </summary>
public sealed class XlmRobertaLayer : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly XlmRobertaAttention attention;
    readonly XlmRobertaIntermediate intermediate;
    readonly XlmRobertaOutput output;

    public XlmRobertaLayer(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaLayer))
    {
        attention = new XlmRobertaAttention(config, compute);
        intermediate = new XlmRobertaIntermediate(config, compute);
        output = new XlmRobertaOutput(config.IntermediateSize, config, compute);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? keyMask)
    {
        using var scope = NewDisposeScope();
        var attended = attention.forward(hidden, keyMask);
        return output.forward(intermediate.forward(attended), attended).MoveToOuterDisposeScope();
    }
}
