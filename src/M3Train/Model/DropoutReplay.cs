using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Makes dropout masks a function of a seed, so that a block recomputed in backward (activation
/// checkpointing) or re-encoded in a second pass (GradCache) draws exactly the masks of its first run.
/// TorchSharp has no per-device CUDA generators and SDPA's attention dropout always draws from the
/// device's default generator, so the default generators are re-seeded: on CUDA every device's (TorchSharp
/// cannot address one), on the CPU the CPU generator, whose state is put back afterwards so the caller's
/// random stream is unchanged (<see cref="Seeding"/>).
/// </summary>
/// <remarks>
/// Re-seeding is process-wide, which is sound because a training process drives one model on one device (data
/// parallelism runs one process per device): nothing else draws from the default generators while a seeded forward
/// or recompute runs. Two models trained on threads of one process would shift each other's masks.
/// </remarks>
public static class DropoutReplay
{
    /// <summary>A well-mixed seed for stream <paramref name="stream"/> (a layer, a sub-batch) of <paramref name="seed"/> (SplitMix64).</summary>
    public static long Mix(long seed, long stream)
    {
        ulong z = unchecked((ulong)seed + 0x9E3779B97F4A7C15UL * ((ulong)stream + 1));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (long)((z ^ (z >> 31)) & long.MaxValue);
    }

    /// <summary>Seeds the default generator(s) that dropout on <paramref name="device"/> draws from.</summary>
    public static void Seed(long seed, Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.manual_seed_all(seed);
        else manual_seed(seed).Dispose();
    }

    /// <summary>
    /// For CPU work, puts the CPU generator's state back when disposed; wrap every seed-then-draw sequence in it so
    /// the caller's random stream is unchanged. (CUDA generators have no state to save in TorchSharp.)
    /// </summary>
    public static IDisposable? Seeding(Device device) => device.type == DeviceType.CUDA ? null : new CpuRandomState();

    sealed class CpuRandomState : IDisposable
    {
        readonly Tensor _state;

        public CpuRandomState()
        {
            using var generator = Generator.Default;
            _state = generator.get_state();
        }

        public void Dispose()
        {
            using var generator = Generator.Default;
            generator.set_state(_state);
            _state.Dispose();
        }
    }
}
