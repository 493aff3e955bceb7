using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Projection to the hidden size, dropout, residual and post-LayerNorm: HF's <c>XLMRobertaSelfOutput</c> after
/// attention (input D) and <c>XLMRobertaOutput</c> after the FFN (input F), which differ only in that width.
/// input [B, L, inFeatures] (matmul dtype or fp32), residual [B, L, D] fp32 → [B, L, D] fp32.
/// </summary>
public sealed class XlmRobertaOutput : nn.Module<Tensor, Tensor, Tensor>
{
    readonly Linear dense;
    readonly LayerNorm LayerNorm; // HF's key spelling
    readonly Dropout dropout;
    readonly ComputeSettings _compute;

    /// <param name="inFeatures">Width of the input: the hidden size after attention, the intermediate size after the FFN.</param>
    public XlmRobertaOutput(long inFeatures, XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaOutput))
    {
        dense = nn.Linear(inFeatures, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        _compute = compute;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input, Tensor residual)
    {
        using var scope = NewDisposeScope();
        var x = dropout.forward(_compute.Linear(dense, input));
        return ComputeSettings.LayerNorm(LayerNorm, x + residual).MoveToOuterDisposeScope();
    }
}
