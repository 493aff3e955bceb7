using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Attention output projection, dropout, residual and post-LayerNorm (HF <c>XLMRobertaSelfOutput</c>).
/// context [B, L, D] (matmul dtype), residual [B, L, D] fp32 → [B, L, D] fp32.
/// </summary>
public sealed class XlmRobertaSelfOutput : nn.Module<Tensor, Tensor, Tensor>
{
    readonly Linear dense;
    readonly LayerNorm LayerNorm; // HF's key spelling
    readonly Dropout dropout;
    readonly ComputeSettings _compute;

    public XlmRobertaSelfOutput(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaSelfOutput))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        _compute = compute;
        RegisterComponents();
    }

    public override Tensor forward(Tensor context, Tensor residual)
    {
        using var scope = NewDisposeScope();
        var x = dropout.forward(_compute.Linear(dense, context));
        return ComputeSettings.LayerNorm(LayerNorm, x + residual).MoveToOuterDisposeScope();
    }
}
