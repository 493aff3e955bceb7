using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Makes dropout masks a function of a seed, so that a block recomputed in backward (activation
/// checkpointing) or re-encoded in a second pass (GradCache) draws exactly the masks of its first run.
/// TorchSharp can save and restore the CPU generator but not the CUDA ones, so the CUDA generators are
/// re-seeded (all devices: TorchSharp cannot address one) and the CPU state is put back afterwards.
/// Re-seeding is process-global: replicas on several GPUs in one process must not run seeded
/// forwards concurrently.
/// </summary>
public static class DropoutReplay
{
    static readonly Lazy<bool> HasCuda = new(() => cuda.is_available());

    /// <summary>A well-mixed seed for stream <paramref name="stream"/> (a layer, a sub-batch) of <paramref name="seed"/> (SplitMix64).</summary>
    public static long Mix(long seed, long stream)
    {
        ulong z = unchecked((ulong)seed + 0x9E3779B97F4A7C15UL * ((ulong)stream + 1));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (long)((z ^ (z >> 31)) & long.MaxValue);
    }

    /// <summary>Seeds the CPU generator and every CUDA generator.</summary>
    public static void Seed(long seed)
    {
        manual_seed(seed).Dispose();
        if (HasCuda.Value) cuda.manual_seed_all(seed);
    }

    /// <summary>Saves the CPU generator's state and puts it back on dispose, so seeding for a replay does not change the caller's random stream.</summary>
    public static IDisposable PreserveCpuState() => new CpuState();

    sealed class CpuState : IDisposable
    {
        readonly Tensor _state;

        public CpuState()
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
