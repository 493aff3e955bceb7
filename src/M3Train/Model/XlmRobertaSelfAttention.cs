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
/// <remarks>
/// The query, key and value projections run as one matmul with their weights stacked [3D, D]: the input is
/// read (and cast to bf16) once instead of three times, and backward computes the input gradient in one
/// matmul instead of three plus two sums, at the cost of copying the weights (D² per projection) each call.
/// That pays where a batch holds many more tokens than D (every GPU training batch); on the CPU the
/// training step measures the same either way. The parameters stay the three HF ones.
/// </remarks>
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
        // Cast before stacking: in bf16 the stacked copy is then half the size.
        var type = _compute.MatmulType;
        var weight = cat([query.weight!.to(type), key.weight!.to(type), value.weight!.to(type)]); // [3D, D]
        var bias = cat([query.bias!.to(type), key.bias!.to(type), value.bias!.to(type)]);         // [3D]
        var qkv = _compute.Linear(hidden, weight, bias)                    // [B, L, 3D]
            .view(b, l, 3, _heads, _headDim).permute(2, 0, 3, 1, 4);      // [3, B, H, L, Dh]
        var context = nn.functional.scaled_dot_product_attention(
            qkv[0], qkv[1], qkv[2], keyMask, training ? _dropout : 0.0);   // [B, H, L, Dh]
        var merged = context.transpose(1, 2).reshape(b, l, _heads * _headDim); // [B, L, D]
        return merged.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The same projections as cross-attention, as RetroMAE's decoder (<c>BertLayerForDecoder</c>) uses them: queries
    /// from <paramref name="queryStream"/>, keys and values from <paramref name="context"/>, each row restricted to its
    /// own attention set. query [B, L, D], context [B, L, D], visible [B, 1, L, L] bool → [B, L, D] in the matmul dtype.
    /// </summary>
    public Tensor CrossAttend(Tensor queryStream, Tensor context, Tensor visible)
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
