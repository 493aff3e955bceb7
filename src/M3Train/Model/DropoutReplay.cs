using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Makes dropout masks a function of a seed, so that a block recomputed in backward (activation
/// checkpointing) or re-encoded in a second pass (GradCache) draws exactly the masks of its first run.
/// TorchSharp has no per-device CUDA generators and SDPA's attention dropout always draws from the
/// device's default generator, so the default generators are re-seeded: on CUDA every device's (TorchSharp
/// cannot address one), on the CPU the CPU generator, whose state is put back afterwards so the caller's
/// random stream is unchanged. Seeded work runs under <see cref="Exclusive"/>, so models on several
/// threads (replicas, tests) do not re-seed under each other; other code that draws from the default
/// generators on another thread meanwhile would still shift the masks.
/// </summary>
public static class DropoutReplay
{
    static readonly object Gate = new();

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
    /// Holds the process-wide seeding lock (re-entrant) until disposed and, for CPU work, puts the CPU
    /// generator's state back on dispose. Wrap every seed-then-draw sequence in it.
    /// </summary>
    public static IDisposable Exclusive(Device device) => new Region(device.type != DeviceType.CUDA);

    sealed class Region : IDisposable
    {
        readonly Tensor? _cpuState;

        public Region(bool restoreCpu)
        {
            Monitor.Enter(Gate);
            if (!restoreCpu) return;
            try
            {
                using var generator = Generator.Default;
                _cpuState = generator.get_state();
            }
            catch
            {
                Monitor.Exit(Gate);
                throw;
            }
        }

        public void Dispose()
        {
            try
            {
                if (_cpuState is null) return;
                using var generator = Generator.Default;
                generator.set_state(_cpuState);
                _cpuState.Dispose();
            }
            finally
            {
                Monitor.Exit(Gate);
            }
        }
    }
}
