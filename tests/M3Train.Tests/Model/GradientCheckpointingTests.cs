using M3Train.Model;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

/// <summary>
/// Checkpointed layers recompute their forward in backward; with dropout 0.1 in training mode that
/// recompute must draw the same masks, so loss and every gradient equal the plain run's. Dropout draws
/// from the process-wide default generator, so these tests run alone.
/// </summary>
[Collection(GlobalRandomCollection.Name)]
public class GradientCheckpointingTests
{
    static M3Model DropoutModel()
    {
        manual_seed(5).Dispose();
        var model = new M3Model(XlmRobertaConfig.Tiny() with { HiddenDropoutProb = 0.1, AttentionProbsDropoutProb = 0.1 });
        model.train();
        return model;
    }

    static (Tensor Ids, Tensor Mask) Batch(long seed, int rows, int length)
    {
        using var generator = new Generator((ulong)seed);
        // Ids from a small range, so queries and passages share tokens and the lexical head gets gradients.
        var ids = randint(4, 40, [rows, length], generator: generator);
        var mask = ones_like(ids);
        // Right padding of varying length, as the tokenizer produces it.
        for (int r = 1; r < rows; r++)
        {
            int real = length - 2 * r;
            ids[r, real..] = tensor(1L);
            mask[r, real..] = tensor(0L);
            ids[r, real - 1] = tensor(2L);
        }
        ids[.., 0] = tensor(0L);
        return (ids, mask);
    }

    /// <summary>A contrastive loss over all three heads, seeded dropout on both encodes.</summary>
    static (float Loss, Dictionary<string, Tensor> Grads) LossAndGrads(M3Model model, long dropoutSeed)
    {
        using var scope = NewDisposeScope();
        model.zero_grad();
        var (qIds, qMask) = Batch(1, 3, 10);
        var (pIds, pMask) = Batch(2, 6, 16);
        var q = model.Encode(qIds, qMask, dropoutSeed);
        var p = model.Encode(pIds, pMask, dropoutSeed + 1);
        var scores = (M3Scores.Dense(q, p) + M3Scores.Sparse(q, p) * 0.3 + M3Scores.Colbert(q, p)) / 0.05;
        var loss = nn.functional.cross_entropy(scores, tensor(new long[] { 0, 2, 4 }));
        loss.backward();
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().DetachFromDisposeScope());
        return (loss.item<float>(), grads);
    }

    [Fact]
    public void CheckpointedLayersGiveThePlainLossAndGradientsWithDropout()
    {
        using var model = DropoutModel();
        var (plainLoss, plainGrads) = LossAndGrads(model, dropoutSeed: 100);
        model.GradientCheckpointing = true;
        var (checkpointedLoss, checkpointedGrads) = LossAndGrads(model, dropoutSeed: 100);
        var (otherSeedLoss, otherSeedGrads) = LossAndGrads(model, dropoutSeed: 200);

        Assert.Equal(plainLoss, checkpointedLoss);
        double maxDiff = plainGrads.Max(kv => (kv.Value - checkpointedGrads[kv.Key]).abs().max().item<float>());
        TestContext.Current.TestOutputHelper?.WriteLine($"loss {plainLoss} (other dropout seed: {otherSeedLoss}); max |Δgrad| {maxDiff:E3}");
        Assert.True(maxDiff <= 1e-7, $"max |Δgrad| = {maxDiff:E3}");
        Assert.All(plainGrads, kv => Assert.True(kv.Value.abs().sum().item<float>() > 0, kv.Key));
        // Dropout is really active: another seed gives another loss.
        Assert.NotEqual(plainLoss, otherSeedLoss);
        foreach (var g in plainGrads.Values.Concat(checkpointedGrads.Values).Concat(otherSeedGrads.Values)) g.Dispose();
    }

    [Fact]
    public void CheckpointedLayersTrainWhenTheEmbeddingsAreFrozen()
    {
        using var model = DropoutModel();
        foreach (var (name, p) in model.named_parameters())
            if (name.StartsWith("model.embeddings.", StringComparison.Ordinal)) p.requires_grad = false;
        model.GradientCheckpointing = true;
        using var scope = NewDisposeScope();
        var (ids, mask) = Batch(3, 2, 8);
        model.Encode(ids, mask, 9).Dense.sum().backward();
        var layerGrad = model.named_parameters().First(p => p.name == "model.encoder.layer.0.attention.self.query.weight").parameter.grad;
        Assert.NotNull(layerGrad);
        Assert.True(layerGrad.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void SeededDropoutLeavesTheCallersRandomStreamAlone()
    {
        using var model = DropoutModel();
        using var scope = NewDisposeScope();
        var (ids, mask) = Batch(4, 2, 8);
        manual_seed(77).Dispose();
        var expected = rand(4);
        manual_seed(77).Dispose();
        model.Encode(ids, mask);
        Assert.True(rand(4).equal(expected).all().item<bool>());
    }
}
