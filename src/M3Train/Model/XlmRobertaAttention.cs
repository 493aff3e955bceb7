using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>Self-attention followed by its output block (HF <c>XLMRobertaAttention</c>). [B, L, D] → [B, L, D] fp32.</summary>
public sealed class XlmRobertaAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly XlmRobertaSelfAttention self;
    readonly XlmRobertaOutput output;

    public XlmRobertaAttention(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaAttention))
    {
        self = new XlmRobertaSelfAttention(config, compute);
        output = new XlmRobertaOutput(config.HiddenSize, config, compute);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor? keyMask)
    {
        using var scope = NewDisposeScope();
        return output.forward(self.forward(hidden, keyMask), hidden).MoveToOuterDisposeScope();
    }
}
