namespace M3Train.Model;

/// <summary>
/// What the encoder and heads compute in. Weights always stay fp32 (they are the optimizer's master
/// copy); <see cref="BFloat16"/> casts matmul operands to bf16 and keeps LayerNorm, normalization,
/// scores and losses in fp32 (TorchSharp has no autocast, so this is done by hand).
/// </summary>
public enum ComputePrecision
{
    Float32,
    BFloat16,
}
