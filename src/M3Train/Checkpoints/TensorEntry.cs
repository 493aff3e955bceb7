using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// One tensor of a weights file as its header describes it, checked against the file (the bytes are there, inside
/// the data area, not shared with another tensor) before anything is allocated.
/// </summary>
/// <param name="Name">The key in the file.</param>
/// <param name="DType">The stored element type.</param>
/// <param name="Shape">Its dimensions, each at least 0.</param>
/// <param name="Index">Position in <see cref="ITensorFile.Entries"/>.</param>
public sealed record TensorEntry(string Name, ScalarType DType, long[] Shape, int Index)
{
    /// <summary>Elements (the product of the shape; checked for overflow when the entry was made).</summary>
    public long Elements => Shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Bytes of the tensor once read.</summary>
    public long Bytes => Elements * ElementSize(DType);

    /// <summary>Bytes per element of the dtypes weights files hold.</summary>
    public static int ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a dtype of a weights file"),
    };

    /// <summary>The element count of <paramref name="shape"/>, or null when a dimension is negative or the product overflows.</summary>
    public static long? CheckedElements(IReadOnlyList<long> shape, int elementSize)
    {
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) return null;
            try { n = checked(n * d); }
            catch (OverflowException) { return null; }
        }
        try { _ = checked(n * elementSize); }
        catch (OverflowException) { return null; }
        return n;
    }

    public override string ToString() => $"{Name} {DType} {SafetensorsFile.Shape(Shape)}";
}
