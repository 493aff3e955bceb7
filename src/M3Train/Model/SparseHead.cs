using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// The lexical head <c>sparse_linear</c> = Linear(D, 1): per-token weights relu(W h + b), with the
/// weights of <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>, <c>&lt;pad&gt;</c> and <c>&lt;unk&gt;</c> set to 0.
/// H [B, L, D], input_ids [B, L] → token weights [B, L] fp32. Weights stay per position: the max per
/// vocabulary id is taken when scoring (<see cref="M3Scores.Sparse"/>), so nothing of size V is built.
/// Its parameters are <c>weight</c> [1, D] and <c>bias</c> [1], the keys of <c>sparse_linear.pt</c>.
/// </summary>
public sealed class SparseHead : nn.Module<Tensor, Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter bias;
    readonly long[] _unusedIds;
    readonly ComputeSettings _compute;

    public SparseHead(long hiddenSize, IReadOnlyList<long> unusedIds, ComputeSettings compute) : base(nameof(SparseHead))
    {
        // Linear's own initialization (kaiming-uniform weight, uniform bias), as FlagEmbedding's fresh heads.
        using var init = nn.Linear(hiddenSize, 1);
        weight = nn.Parameter(init.weight!.detach().clone());
        bias = nn.Parameter(init.bias!.detach().clone());
        _unusedIds = unusedIds.ToArray();
        _compute = compute;
        RegisterComponents();
    }

    public override Tensor forward(Tensor lastHidden, Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var type = _compute.MatmulType;
        var logits = nn.functional.linear(lastHidden.to(type), weight.to(type), bias.to(type));
        var weights = nn.functional.relu(logits.squeeze(-1).to(ScalarType.Float32)); // [B, L]
        // Compared one id at a time: a tensor of the ids would be a host-to-device copy every forward.
        var keep = inputIds.ne(_unusedIds[0]);
        foreach (long id in _unusedIds.Skip(1)) keep = keep.logical_and(inputIds.ne(id));
        return (weights * keep).MoveToOuterDisposeScope();
    }
}
