using M3Train.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// The one transformer layer of RetroMAE's decoder: an XLM-R layer whose attention reads queries from one
/// stream and keys/values from another (RetroMAE's <c>BertLayerForDecoder</c>).
/// query [B, L, D] fp32, context [B, L, D] fp32, visible [B, 1, L, L] bool → [B, L, D] fp32.
/// </summary>
public sealed class RetroMaeDecoderLayer : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly RetroMaeDecoderAttention attention;
    readonly XlmRobertaIntermediate intermediate;
    readonly XlmRobertaOutput output;

    public RetroMaeDecoderLayer(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(RetroMaeDecoderLayer))
    {
        attention = new RetroMaeDecoderAttention(config, compute);
        intermediate = new XlmRobertaIntermediate(config, compute);
        output = new XlmRobertaOutput(config.IntermediateSize, config, compute);
        RegisterComponents();
    }

    public override Tensor forward(Tensor queryStream, Tensor context, Tensor visible)
    {
        using var scope = NewDisposeScope();
        var attended = attention.forward(queryStream, context, visible);
        return output.forward(intermediate.forward(attended), attended).MoveToOuterDisposeScope();
    }
}
