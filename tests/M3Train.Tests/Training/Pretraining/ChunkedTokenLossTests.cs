using M3Train.Training.Pretraining;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Pretraining;

[Collection(HostMemoryCollection.Name)]
public sealed class ChunkedTokenLossTests(ITestOutputHelper output)
{
    const int N = 2048, D = 32, V = 10_000;

    /// <summary>A trunk that makes the rows (so they are part of a graph) and an LM-like head, from a fixed seed.</summary>
    sealed class Setup : IDisposable
    {
        public readonly nn.Module<Tensor, Tensor> Trunk, Head;
        public readonly Tensor Input, Labels;

        public Setup()
        {
            using var generator = new Generator(3, CPU);
            Input = randn(N, D, generator: generator);
            Labels = randint(V, N, generator: generator);
            Trunk = nn.Linear(D, D);
            Head = nn.Linear(D, V);
            using (no_grad())
                foreach (var p in Trunk.parameters().Concat(Head.parameters()))
                    p.copy_(randn(p.shape, generator: generator) * 0.2);
        }

        /// <summary>The whole step at <paramref name="chunk"/>: the loss, then the trunk's and head's gradients.</summary>
        public (float Loss, List<Tensor> Gradients) Step(int chunk, double weight)
        {
            using var scope = NewDisposeScope();
            Trunk.zero_grad();
            Head.zero_grad();
            var rows = Trunk.forward(Input);
            using var w = tensor(weight);
            var (loss, rowGradient) = ChunkedTokenLoss.Run(Head.forward, rows, Labels, w, chunk);
            autograd.backward([rows], [rowGradient!]);
            var gradients = Trunk.parameters().Concat(Head.parameters()).Select(p => p.grad!.clone().MoveToOuterDisposeScope()).ToList();
            return (loss.item<float>(), gradients);
        }

        public void Dispose()
        {
            Trunk.Dispose(); Head.Dispose(); Input.Dispose(); Labels.Dispose();
        }
    }

    [Fact]
    public void ChunksGiveTheOnePassLossAndGradients()
    {
        using var setup = new Setup();
        var rows = setup.Trunk.forward(setup.Input);
        var reference = nn.functional.cross_entropy(setup.Head.forward(rows), setup.Labels, reduction: nn.Reduction.Sum);
        (reference * 0.25).backward();
        var expected = setup.Trunk.parameters().Concat(setup.Head.parameters()).Select(p => p.grad!.clone()).ToList();

        foreach (int chunk in new[] { 0, 1000, 256, 7 })
        {
            var (loss, gradients) = setup.Step(chunk, 0.25);
            Assert.True(Math.Abs(loss - reference.item<float>()) <= 1e-5 * reference.item<float>(), $"chunk {chunk}: loss {loss} vs {reference.item<float>()}");
            foreach (var (got, want) in gradients.Zip(expected))
            {
                float diff = (got - want).abs().max().item<float>(), scale = want.abs().max().item<float>();
                Assert.True(diff <= 1e-5f * scale, $"chunk {chunk}: gradient differs by {diff} at scale {scale}");
            }
        }
    }

    [Fact]
    public void RowsThatNeedNoGradientGetNone_AndNoRowsGiveZero()
    {
        using var setup = new Setup();
        using var w = tensor(1.0);
        var (loss, gradient) = ChunkedTokenLoss.Run(setup.Head.forward, setup.Input, setup.Labels, w, 256);
        Assert.Null(gradient);
        Assert.True(loss.item<float>() > 0);

        setup.Head.zero_grad(set_to_none: true);
        var none = setup.Trunk.forward(setup.Input)[TensorIndex.Slice(0, 0)];
        var (zero, zeroGradient) = ChunkedTokenLoss.Run(setup.Head.forward, none, setup.Labels[TensorIndex.Slice(0, 0)], w, 256);
        Assert.Equal(0f, zero.item<float>());
        Assert.Equal([0L, D], zeroGradient!.shape);
        // As one pass over no rows would: the head's gradients exist and are zero, so AdamW still steps it.
        Assert.All(setup.Head.parameters(), p => Assert.True(p.grad is { } g && g.abs().sum().item<float>() == 0));
    }

    [Fact]
    public void PeakHostMemoryHoldsOneChunksLogits()
    {
        HostPeak.RequireMeasurable();
        using var setup = new Setup();
        setup.Step(64, 1.0);    // first use: allocator pools, lazily initialized kernels
        double onePass = HostPeak.MiB(() => setup.Step(0, 1.0));
        double chunked = HostPeak.MiB(() => setup.Step(64, 1.0));
        double logits = (double)N * V * 4 / 1048576;
        output.WriteLine($"[{N}, {V}] logits are {logits:F0} MiB; peak growth one pass {onePass:F1} MiB, chunks of 64 rows {chunked:F1} MiB");
        // One pass holds the logits, their log-softmax and gradients (four [N, V] tensors, 313 MiB here); chunks of
        // 64 rows hold a thirty-second of that at a time, plus the allocator's slack.
        Assert.True(onePass >= 2 * logits, $"one pass peaked at {onePass:F1} MiB, less than two [N, V] tensors");
        Assert.True(chunked <= onePass / 4, $"chunks peaked at {chunked:F1} MiB, one pass at {onePass:F1} MiB");
    }
}
