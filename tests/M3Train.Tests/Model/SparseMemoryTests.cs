using M3Train.Model;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

/// <summary>
/// The lexical path (sparse head, max per id, scores, backward) must not allocate anything of size L·V.
/// Measured as the process's peak resident memory during the path (Linux: /proc/self/clear_refs resets the
/// peak, VmHWM reads it) for a 1502-token and a 250002-token vocabulary with the same B, L and ids. A probe
/// first shows the measurement sees an allocation of FlagEmbedding's [B, L, V] size. Runs alone, so other
/// tests' allocations do not blur the peak.
/// </summary>
[Collection(MemoryMeasurementCollection.Name)]
public class SparseMemoryTests
{
    const int Batch = 4, Length = 64;

    [Fact]
    public void SparsePathMemoryDoesNotGrowWithVocabulary()
    {
        const int bigVocab = 250002;
        long fullSize = (long)Batch * Length * bigVocab * sizeof(float); // FlagEmbedding's [B, L, V]: 256 MB

        long probe = PeakGrowth(() => zeros(Batch, Length, bigVocab).sum().item<float>());
        Assert.True(probe >= fullSize / 2, $"the probe saw {probe >> 20} MB of a {fullSize >> 20} MB allocation");

        long small = SparsePathPeak(1502);
        long large = SparsePathPeak(bigVocab);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"peak growth: probe {probe >> 10} kB, sparse path V=1502 {small >> 10} kB, V={bigVocab} {large >> 10} kB");
        Assert.True(large <= small + fullSize / 16,
            $"peak growth {small >> 10} kB at V=1502, {large >> 10} kB at V={bigVocab} (an L·V tensor would be {fullSize >> 20} MB)");
    }

    static long SparsePathPeak(int vocab)
    {
        using var model = new M3Model(XlmRobertaConfig.Tiny() with { VocabSize = vocab, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 });
        using var generator = new Generator(3);
        using var ids = randint(4, 1502, [Batch, Length], generator: generator);
        ids[.., 0] = tensor(0L);
        ids[.., ^1] = tensor(2L);
        using var mask = ones_like(ids);
        using var hidden = model.Backbone.Forward(ids, mask).detach().requires_grad_(true);
        return PeakGrowth(() =>
        {
            using var scope = NewDisposeScope();
            var weights = model.SparseHead.forward(hidden, ids);
            var scores = M3Scores.Sparse(ids, weights, ids, weights);
            scores.sum().backward();
            return scores.sum().item<float>();
        });
    }

    static long PeakGrowth(Func<float> run)
    {
        GC.Collect();
        File.WriteAllText("/proc/self/clear_refs", "5");
        long before = Resident("VmRSS");
        run();
        return Resident("VmHWM") - before;
    }

    static long Resident(string field) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasurementCollection
{
    public const string Name = "Memory measurement";
}
