using TorchSharp;

namespace M3Train.Distributed;

/// <summary>NCCL's enum values (<c>nccl.h</c>, stable since 2.10) for libtorch's dtypes and M3Train's reductions.</summary>
public static class NcclTypes
{
    public const int Int8 = 0, Uint8 = 1, Int32 = 2, Uint32 = 3, Int64 = 4, Uint64 = 5, Float16 = 6, Float32 = 7, Float64 = 8, BFloat16 = 9;
    public const int Sum = 0, Avg = 4;

    /// <summary><c>ncclResult_t</c>: success, and the asynchronous "still running" of a non-blocking communicator.</summary>
    public const int Success = 0, InProgress = 7;

    public static int DataType(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Int8 => Int8,
        torch.ScalarType.Byte or torch.ScalarType.Bool => Uint8,
        torch.ScalarType.Int32 => Int32,
        torch.ScalarType.Int64 => Int64,
        torch.ScalarType.Float16 => Float16,
        torch.ScalarType.Float32 => Float32,
        torch.ScalarType.Float64 => Float64,
        torch.ScalarType.BFloat16 => BFloat16,
        _ => throw new ArgumentException($"NCCL has no data type for {dtype}"),
    };

    public static int Operation(ReduceOp op) => op switch
    {
        ReduceOp.Sum => Sum,
        ReduceOp.Average => Avg,
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };
}
