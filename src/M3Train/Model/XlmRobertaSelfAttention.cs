using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Multi-head self-attention (HF <c>XLMRobertaSelfAttention</c>) through
/// <c>scaled_dot_product_attention</c>, which picks fused kernels on CUDA.
/// Shapes: B batch, L tokens, D hidden, H heads, Dh = D/H.
/// hidden [B, L, D], keyMask [B, 1, 1, L] (true = attend) or null when nothing is padded → [B, L, D]
/// in the matmul dtype.
/// </summary>
public sealed class XlmRobertaSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly Linear query;
    readonly Linear key;
    readonly Linear value;
    readonly long _heads;
    readonly long _headDim;
    readonly double _dropout;
    readonly ComputeSettings _compute;

    public XlmRobertaSelfAttention(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaSelfAttention))
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

    public override Tensor forward(Tensor hidden, Tensor? keyMask)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], l = hidden.shape[1];
        Tensor Heads(Linear projection) =>
            _compute.Linear(projection, hidden).view(b, l, _heads, _headDim).transpose(1, 2); // [B, H, L, Dh]
        var context = nn.functional.scaled_dot_product_attention(
            Heads(query), Heads(key), Heads(value), keyMask, training ? _dropout : 0.0); // [B, H, L, Dh]
        var merged = context.transpose(1, 2).reshape(b, l, _heads * _headDim); // [B, L, D]
        return merged.MoveToOuterDisposeScope();
    }
}
