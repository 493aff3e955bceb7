using M3Train.Distributed;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Distributed;

public class HostReductionTests
{
    /// <summary>The ring's bfloat16 and float16 sums must round as libtorch's own addition does.</summary>
    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void HalfPrecisionAddsRoundAsLibTorchDoes(ScalarType dtype)
    {
        var a = randn(4099, generator: new Generator(seed: 1)).mul(100).to(dtype);
        var b = randn(4099, generator: new Generator(seed: 2)).to(dtype);
        var expected = (a + b).bytes.ToArray();
        var sum = a.clone();
        HostReduction.Add(dtype, TensorMemory.Address(sum), TensorMemory.Address(b), 4099);
        Assert.Equal(expected, sum.bytes.ToArray());
        var average = sum.clone();
        HostReduction.Divide(dtype, TensorMemory.Address(average), 4099, 3);
        Assert.Equal((sum / 3).bytes.ToArray(), average.bytes.ToArray());
    }

    [Fact]
    public void SingleAndIntegerAddsMatchLibTorchBitForBit()
    {
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64, ScalarType.Int32, ScalarType.Int64 })
        {
            var a = (randn(1003, generator: new Generator(seed: 3)) * 1000).to(dtype);
            var b = (randn(1003, generator: new Generator(seed: 4)) * 1000).to(dtype);
            var sum = a.clone();
            HostReduction.Add(dtype, TensorMemory.Address(sum), TensorMemory.Address(b), 1003);
            Assert.Equal((a + b).bytes.ToArray(), sum.bytes.ToArray());
        }
    }

    [Fact]
    public void BFloat16ConversionKeepsNaNAndRoundsHalfToEven()
    {
        Assert.True(float.IsNaN(HostReduction.FromBFloat16(HostReduction.ToBFloat16(float.NaN))));
        Assert.Equal(1.0f, HostReduction.FromBFloat16(HostReduction.ToBFloat16(1.00390625f)));      // halfway, rounds to the even 1.0
        Assert.Equal(1.015625f, HostReduction.FromBFloat16(HostReduction.ToBFloat16(1.01171875f))); // halfway, rounds to the even 1.015625
        Assert.True(float.IsPositiveInfinity(HostReduction.FromBFloat16(HostReduction.ToBFloat16(float.PositiveInfinity))));
    }
}
