using M3Train.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// Cross-attention (<see cref="XlmRobertaSelfAttention.CrossAttend"/>, with a BERT self-attention's <c>query</c>,
/// <c>key</c>, <c>value</c>) and its output block (projection, dropout, residual on the query stream,
/// LayerNorm). query [B, L, D] fp32, context [B, L, D], visible [B, 1, L, L] → [B, L, D] fp32.
/// </summary>
public sealed class RetroMaeDecoderAttention : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly XlmRobertaSelfAttention self;
    readonly XlmRobertaOutput output;

    public RetroMaeDecoderAttention(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(RetroMaeDecoderAttention))
    {
        self = new XlmRobertaSelfAttention(config, compute);
        output = new XlmRobertaOutput(config.HiddenSize, config, compute);
        RegisterComponents();
    }

    public override Tensor forward(Tensor queryStream, Tensor context, Tensor visible)
    {
        using var scope = NewDisposeScope();
        return output.forward(self.CrossAttend(queryStream, context, visible), queryStream).MoveToOuterDisposeScope();
    }
}
