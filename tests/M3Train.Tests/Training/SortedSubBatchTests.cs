using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Text;
using M3Train.Training;
using M3Train.Training.Losses;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

/// <summary>GradCache over length-sorted sub-batches: the same loss and gradients as over sub-batches in batch order, fewer masks.</summary>
public class SortedSubBatchTests
{
    const int SubBatch = 2;

    /// <summary>
    /// Four queries of 1 or 3 tokens and eight passages of 1, 2, 4 or 5 tokens (ids made here, each text its own token,
    /// between &lt;s&gt; and &lt;/s&gt;), alternating so that every sub-batch of two in batch order mixes lengths while
    /// sorted ones pair equal lengths.
    /// </summary>
    static TrainBatch Batch(bool sorted)
    {
        static int[] Text(int token, int n) => [0, .. Enumerable.Repeat(token, n), 2];
        int[] queryLengths = [1, 3, 1, 3], passageLengths = [1, 4, 1, 4, 2, 5, 2, 5];
        int[][] q = queryLengths.Select((n, i) => Text(100 + i, n)).ToArray();
        int[][] p = passageLengths.Select((n, i) => Text(200 + i, n)).ToArray();
        SubBatches Cut(int[][] ids) => sorted
            ? SubBatches.ByLength(ids, SubBatch, 1)
            : new SubBatches(ids.Chunk(SubBatch).Select(c => EncodedBatch.Pad(c)).ToList(), null);
        ulong[] hashes = p.Select(ids => TextHash.Of(string.Join(' ', ids))).ToArray();
        return new TrainBatch(0, 0, 0, "lengths", 0, [0, 1, 2, 3], EncodedBatch.Pad(q), EncodedBatch.Pad(p), null, 2, false,
            Cut(q), Cut(p), hashes, hashes.Where((_, i) => i % 2 == 0).Select(h => new[] { h }).ToArray());
    }

    static (float Loss, double MaskedShare, Dictionary<string, Tensor> Grads) Step(bool sorted)
    {
        using var checkpoint = M3Checkpoint.Load(TinyRun.Repo("data", "models", "tiny-m3"));
        // Without dropout: sorting changes which sub-batch, hence which dropout seed, a text gets.
        checkpoint.Model.eval();
        var objective = new UnifiedFinetuneObjective(checkpoint.Model, DataParallelGroup.Alone(CPU),
            new M3BatchLoss(new LossConfig(), AllHeads), SubBatch, seed: 1);
        var step = objective.Step(Batch(sorted), new StepContext(1, 0));
        var grads = checkpoint.Model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        return (step.Loss.item<float>(), step.Figures["masked_attention_share"], grads);
    }

    [Fact]
    public void SortedSubBatchesGiveTheSameLossAndGradientsWithFewerMasks()
    {
        var inOrder = Step(sorted: false);
        var sorted = Step(sorted: true);

        Assert.Equal(1.0, inOrder.MaskedShare);
        Assert.Equal(0.0, sorted.MaskedShare);
        Assert.True(Math.Abs(inOrder.Loss - sorted.Loss) <= 1e-5f * Math.Max(1f, Math.Abs(inOrder.Loss)), $"loss {sorted.Loss} vs {inOrder.Loss}");
        Assert.Equal(inOrder.Grads.Keys.Order(), sorted.Grads.Keys.Order());
        Assert.NotEmpty(inOrder.Grads);
        foreach (var (name, grad) in inOrder.Grads)
        {
            float diff = (sorted.Grads[name] - grad).abs().max().item<float>();
            float scale = grad.abs().max().item<float>();
            Assert.True(diff <= 1e-5f * Math.Max(1f, scale), $"{name}: the sorted sub-batches' gradient differs by {diff}");
        }
    }
}
