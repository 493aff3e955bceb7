using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// The multi-vector head <c>colbert_linear</c> = Linear(D, D'): one vector per token after CLS,
/// padding rows zeroed, then L2-normalized (zero rows stay zero).
/// H [B, L, D], attention_mask [B, L] → vectors [B, L-1, D'] fp32.
/// Its parameters are <c>weight</c> [D', D] and <c>bias</c> [D'], the keys of <c>colbert_linear.pt</c>.
/// </summary>
public sealed class ColbertHead : nn.Module<Tensor, Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter bias;
    readonly ComputeSettings _compute;

    public ColbertHead(long hiddenSize, long outputSize, ComputeSettings compute) : base(nameof(ColbertHead))
    {
        // Linear's own initialization (kaiming-uniform weight, uniform bias), as FlagEmbedding's fresh heads.
        using var init = nn.Linear(hiddenSize, outputSize);
        weight = nn.Parameter(init.weight!.detach().clone());
        bias = nn.Parameter(init.bias!.detach().clone());
        _compute = compute;
        RegisterComponents();
    }

    /// <summary>Whether vectors are L2-normalized; default true.</summary>
    public bool Normalize { get; set; } = true;

    /// <summary>D', the vector size.</summary>
    public long OutputSize => weight.shape[0];

    public override Tensor forward(Tensor lastHidden, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        var type = _compute.MatmulType;
        var tokens = lastHidden[.., 1..]; // [B, L-1, D]
        var vectors = nn.functional.linear(tokens.to(type), weight.to(type), bias.to(type)).to(ScalarType.Float32);
        var mask = attentionMask[.., 1..].unsqueeze(-1).to(ScalarType.Float32); // [B, L-1, 1]
        vectors = vectors * mask; // [B, L-1, D']
        if (Normalize) vectors = nn.functional.normalize(vectors, p: 2.0, dim: -1);
        return vectors.MoveToOuterDisposeScope();
    }
}
