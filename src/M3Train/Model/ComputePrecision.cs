namespace M3Train.Model;

/// <summary>
/// What the encoder and heads compute in. Weights always stay fp32 (they are the optimizer's master
/// copy); <see cref="BFloat16"/> casts matmul operands to bf16 and keeps LayerNorm, normalization,
/// scores and losses in fp32 (TorchSharp has no autocast, so this is done by hand). bf16 matmuls
/// accumulate in fp32 (cuBLAS's 32F compute type, as PyTorch's autocast; oneDNN on the CPU) and round
/// only their outputs to bf16.
/// </summary>
public enum ComputePrecision
{
    Float32,
    BFloat16,
}
