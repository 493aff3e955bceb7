using System.Numerics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>
/// The CPU ring's arithmetic on host memory: <c>destination += source</c> and division by the world size,
/// element by element in a fixed order, so the same inputs give the same bits on every machine. bfloat16 and
/// float16 are added in float32 and rounded to nearest-even, as libtorch adds them.
/// </summary>
public static unsafe class HostReduction
{
    public static void Add(ScalarType dtype, nint destination, nint source, int count)
    {
        switch (dtype)
        {
            case ScalarType.Float32: AddVectors(new Span<float>((void*)destination, count), new ReadOnlySpan<float>((void*)source, count)); break;
            case ScalarType.Float64: AddVectors(new Span<double>((void*)destination, count), new ReadOnlySpan<double>((void*)source, count)); break;
            case ScalarType.Int32: AddVectors(new Span<int>((void*)destination, count), new ReadOnlySpan<int>((void*)source, count)); break;
            case ScalarType.Int64: AddVectors(new Span<long>((void*)destination, count), new ReadOnlySpan<long>((void*)source, count)); break;
            case ScalarType.BFloat16:
                {
                    var d = new Span<ushort>((void*)destination, count);
                    var s = new ReadOnlySpan<ushort>((void*)source, count);
                    for (int i = 0; i < count; i++) d[i] = ToBFloat16(FromBFloat16(d[i]) + FromBFloat16(s[i]));
                    break;
                }
            case ScalarType.Float16:
                {
                    var d = new Span<Half>((void*)destination, count);
                    var s = new ReadOnlySpan<Half>((void*)source, count);
                    for (int i = 0; i < count; i++) d[i] = (Half)((float)d[i] + (float)s[i]);
                    break;
                }
            default:
                throw new ArgumentException($"no host reduction for {dtype}");
        }
    }

    /// <summary><c>data /= divisor</c>, for an average.</summary>
    public static void Divide(ScalarType dtype, nint data, int count, int divisor)
    {
        switch (dtype)
        {
            case ScalarType.Float32:
                {
                    var d = new Span<float>((void*)data, count);
                    for (int i = 0; i < count; i++) d[i] /= divisor;
                    break;
                }
            case ScalarType.Float64:
                {
                    var d = new Span<double>((void*)data, count);
                    for (int i = 0; i < count; i++) d[i] /= divisor;
                    break;
                }
            case ScalarType.BFloat16:
                {
                    var d = new Span<ushort>((void*)data, count);
                    for (int i = 0; i < count; i++) d[i] = ToBFloat16(FromBFloat16(d[i]) / divisor);
                    break;
                }
            case ScalarType.Float16:
                {
                    var d = new Span<Half>((void*)data, count);
                    for (int i = 0; i < count; i++) d[i] = (Half)((float)d[i] / divisor);
                    break;
                }
            default:
                throw new ArgumentException($"no host average for {dtype}");
        }
    }

    static void AddVectors<T>(Span<T> destination, ReadOnlySpan<T> source) where T : unmanaged, INumber<T>
    {
        var dv = MemoryMarshal.Cast<T, Vector<T>>(destination);
        var sv = MemoryMarshal.Cast<T, Vector<T>>(source);
        for (int i = 0; i < dv.Length; i++) dv[i] += sv[i];
        for (int i = dv.Length * Vector<T>.Count; i < destination.Length; i++) destination[i] += source[i];
    }

    public static float FromBFloat16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}
