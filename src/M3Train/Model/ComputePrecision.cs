namespace M3Train.Model;

/// <summary>
/// What the encoder and heads compute in. Weights always stay fp32 (they are the optimizer's master
/// copy); <see cref="BFloat16"/> and <see cref="Float16"/> cast matmul operands to 16 bits and keep LayerNorm,
/// normalization, scores and losses in fp32 (TorchSharp has no autocast, so this is done by hand). 16-bit matmuls
/// accumulate in fp32 (cuBLAS's 32F compute type, as PyTorch's autocast; oneDNN on the CPU) and round
/// only their outputs.
/// </summary>
public enum ComputePrecision
{
    Float32,
    BFloat16,
    /// <summary>
    /// fp16: for GPUs without bf16 (V100, T4). Its range ends at 65504 and gradients below 6·10⁻⁸ vanish, so training
    /// in it needs loss scaling (<c>Training.LossScaler</c>); inference does not.
    /// </summary>
    Float16,
}
