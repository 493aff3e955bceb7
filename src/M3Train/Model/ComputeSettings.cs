using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Settings every part of one model reads at forward time (one shared instance per model, so
/// flipping a flag on the model reaches all layers), and the mixed-precision primitives they use.
/// </summary>
public sealed class ComputeSettings
{
    /// <summary>Matmul precision; default fp32.</summary>
    public ComputePrecision Precision { get; set; } = ComputePrecision.Float32;

    /// <summary>Recompute each encoder layer in backward instead of keeping its activations; default off.</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>Told when checkpointed layers run and when their backward is done (data-parallel gradient buckets); null: nobody.</summary>
    public ILayerGradientObserver? GradientObserver { get; set; }

    /// <summary>Dtype of matmul operands and outputs.</summary>
    public ScalarType MatmulType => Precision switch
    {
        ComputePrecision.BFloat16 => ScalarType.BFloat16,
        ComputePrecision.Float16 => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary>x Wᵀ + b with operands cast to <see cref="MatmulType"/>; the fp32 weights are left as they are.</summary>
    public Tensor Linear(Linear layer, Tensor x)
    {
        if (Precision == ComputePrecision.Float32) return layer.forward(x);
        return Linear(x, layer.weight!, layer.bias);
    }

    /// <summary>x Wᵀ + b for a weight [out, in] and bias [out] that are not one Linear's (e.g. several concatenated).</summary>
    public Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        var type = MatmulType;
        using var w = weight.to(type);
        using var b = bias?.to(type);
        return nn.functional.linear(x.to(type), w, b);
    }

    /// <summary>LayerNorm in fp32 whatever the input dtype, so statistics of bf16 activations stay exact.</summary>
    public static Tensor LayerNorm(LayerNorm norm, Tensor x) =>
        norm.forward(x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32));
}
