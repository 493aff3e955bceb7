using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// FFN down-projection, dropout, residual and post-LayerNorm (HF <c>XLMRobertaOutput</c>).
/// intermediate [B, L, F], residual [B, L, D] fp32 → [B, L, D] fp32.
/// </summary>
public sealed class XlmRobertaOutput : nn.Module<Tensor, Tensor, Tensor>
{
    readonly Linear dense;
    readonly LayerNorm LayerNorm; // HF's key spelling
    readonly Dropout dropout;
    readonly ComputeSettings _compute;

    public XlmRobertaOutput(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaOutput))
    {
        dense = nn.Linear(config.IntermediateSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        _compute = compute;
        RegisterComponents();
    }

    public override Tensor forward(Tensor intermediate, Tensor residual)
    {
        using var scope = NewDisposeScope();
        var x = dropout.forward(_compute.Linear(dense, intermediate));
        return ComputeSettings.LayerNorm(LayerNorm, x + residual).MoveToOuterDisposeScope();
    }
}
