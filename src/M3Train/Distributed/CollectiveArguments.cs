using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>The checks every backend makes before a collective, so a misuse fails on the rank that made it, at once.</summary>
public static class CollectiveArguments
{
    public static void AllReduce(Tensor tensor, ReduceOp op, DeviceType device)
    {
        Common(tensor, device, "all_reduce");
        if (!Reducible(tensor.dtype))
            throw new ArgumentException($"all_reduce supports float32, float64, bfloat16, float16, int32 and int64 tensors, not {tensor.dtype}");
        if (op == ReduceOp.Average && !is_floating_point(tensor))
            throw new ArgumentException($"all_reduce average needs a floating-point tensor, not {tensor.dtype}");
    }

    public static void AllGather(Tensor input, Tensor output, int worldSize, DeviceType device)
    {
        Common(input, device, "all_gather");
        Common(output, device, "all_gather");
        if (output.dtype != input.dtype)
            throw new ArgumentException($"all_gather output is {output.dtype}, input {input.dtype}");
        if (output.numel() != input.numel() * worldSize)
            throw new ArgumentException($"all_gather output holds {output.numel()} elements; {worldSize} ranks × {input.numel()} need {input.numel() * worldSize}");
    }

    public static void Broadcast(Tensor tensor, int root, int worldSize, DeviceType device)
    {
        Common(tensor, device, "broadcast");
        if (root < 0 || root >= worldSize) throw new ArgumentOutOfRangeException(nameof(root), $"broadcast root {root} is not a rank of {worldSize}");
    }

    public static bool Reducible(ScalarType dtype) => dtype is ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16
        or ScalarType.Float16 or ScalarType.Int32 or ScalarType.Int64;

    static void Common(Tensor tensor, DeviceType device, string what)
    {
        if (tensor.device_type != device)
            throw new ArgumentException($"{what} on this backend takes {device} tensors, not {tensor.device_type} ones");
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{what} needs a contiguous tensor (call .contiguous() first, or flatten into a bucket)");
    }
}
