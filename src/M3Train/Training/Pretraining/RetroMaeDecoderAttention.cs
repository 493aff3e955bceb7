using M3Train.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// <see cref="RetroMaeCrossAttention"/> and its output block (projection, dropout, residual on the query stream,
/// LayerNorm). query [B, L, D] fp32, context [B, L, D], visible [B, 1, L, L] → [B, L, D] fp32.
/// </summary>
public sealed class RetroMaeDecoderAttention : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly RetroMaeCrossAttention self;
    readonly XlmRobertaOutput output;

    public RetroMaeDecoderAttention(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(RetroMaeDecoderAttention))
    {
        self = new RetroMaeCrossAttention(config, compute);
        output = new XlmRobertaOutput(config.HiddenSize, config, compute);
        RegisterComponents();
    }

    public override Tensor forward(Tensor queryStream, Tensor context, Tensor visible)
    {
        using var scope = NewDisposeScope();
        return output.forward(self.forward(queryStream, context, visible), queryStream).MoveToOuterDisposeScope();
    }
}
