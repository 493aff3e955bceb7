using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>FFN up-projection with exact (erf) GELU (HF <c>XLMRobertaIntermediate</c>). [B, L, D] → [B, L, F] in the matmul dtype.</summary>
public sealed class XlmRobertaIntermediate : nn.Module<Tensor, Tensor>
{
    readonly Linear dense;
    readonly ComputeSettings _compute;

    public XlmRobertaIntermediate(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaIntermediate))
    {
        dense = nn.Linear(config.HiddenSize, config.IntermediateSize);
        _compute = compute;
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        return nn.functional.gelu(_compute.Linear(dense, hidden)).MoveToOuterDisposeScope();
    }
}
