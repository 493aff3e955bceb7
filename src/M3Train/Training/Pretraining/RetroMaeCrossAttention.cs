using M3Train.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// Multi-head attention of RetroMAE's decoder: queries from the query stream, keys and values from the context
/// stream, each row restricted to its own attention set. Keys are those of a BERT self-attention
/// (<c>query</c>, <c>key</c>, <c>value</c>), as in RetroMAE's <c>BertLayerForDecoder</c>.
/// Shapes: B texts, L tokens, D hidden, H heads, Dh = D/H.
/// query [B, L, D], context [B, L, D], visible [B, 1, L, L] bool → [B, L, D] in the matmul dtype.
/// </summary>
public sealed class RetroMaeCrossAttention : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    readonly Linear query;
    readonly Linear key;
    readonly Linear value;
    readonly long _heads;
    readonly long _headDim;
    readonly double _dropout;
    readonly ComputeSettings _compute;

    public RetroMaeCrossAttention(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(RetroMaeCrossAttention))
    {
        query = nn.Linear(config.HiddenSize, config.HiddenSize);
        key = nn.Linear(config.HiddenSize, config.HiddenSize);
        value = nn.Linear(config.HiddenSize, config.HiddenSize);
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        _dropout = config.AttentionProbsDropoutProb;
        _compute = compute;
        RegisterComponents();
    }

    public override Tensor forward(Tensor queryStream, Tensor context, Tensor visible)
    {
        using var scope = NewDisposeScope();
        long b = queryStream.shape[0], l = queryStream.shape[1];
        Tensor Heads(Linear projection, Tensor x) =>
            _compute.Linear(projection, x).view(b, l, _heads, _headDim).transpose(1, 2); // [B, H, L, Dh]
        var attended = nn.functional.scaled_dot_product_attention(
            Heads(query, queryStream), Heads(key, context), Heads(value, context), visible, training ? _dropout : 0.0); // [B, H, L, Dh]
        return attended.transpose(1, 2).reshape(b, l, _heads * _headDim).MoveToOuterDisposeScope(); // [B, L, D]
    }
}
