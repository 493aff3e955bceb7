using M3Train.Data;
using M3Train.Model;
using M3Train.Text;
using M3Train.Training;
using M3Train.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

[Collection(ProcessWideTorchCollection.Name)]
public class M3TrainStepTests
{
    static readonly XlmRobertaConfig NoDropout = XlmRobertaConfig.Tiny() with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 };

    /// <summary>3 queries, G = 2, texts of different lengths, so both batches are padded.</summary>
    static TrainBatch PaddedBatch(int seed)
    {
        var random = new Random(seed);
        int[] Text(int length) => [XlmrTokenizer.BosId, .. Enumerable.Range(0, length - 2).Select(_ => random.Next(4, NoDropout.VocabSize)), XlmrTokenizer.EosId];
        var queries = EncodedBatch.Pad([Text(5), Text(9), Text(7)]);
        var passages = EncodedBatch.Pad(Enumerable.Range(0, 6).Select(i => Text(10 + 3 * i)).ToList());
        return new TrainBatch(0, seed, 0, "test", 0, [0, 1, 2], queries, passages, null, 2, false, null, null);
    }

    /// <summary>A model with the weights of <paramref name="like"/> (or fresh ones), and its step.</summary>
    static (M3Model Model, M3TrainStep Step) Create(int? subBatch, M3Model? like = null, LossConfig? loss = null)
    {
        manual_seed(3);
        var model = new M3Model(NoDropout);
        if (like is not null)
        {
            using var noGrad = no_grad();
            foreach (var (p, q) in model.parameters().Zip(like.parameters())) p.copy_(q);
        }
        model.train();
        var train = new TrainConfig { Lr = 1e-3, SubBatchSize = subBatch };
        var optimizer = OptimizerFactory.Create(model.named_parameters(), train);
        return (model, new M3TrainStep(model, CPU, new M3BatchLoss(loss ?? new LossConfig()), optimizer, train));
    }

    /// <summary>Equal up to float rounding: the batches are encoded in pieces of different sizes, so sums run in another order.</summary>
    static void AssertClose(Tensor expected, Tensor actual)
    {
        double scale = expected.norm().item<float>();
        double difference = (expected - actual).norm().item<float>();
        Assert.True(difference <= 1e-5 * scale + 1e-7, $"differ by {difference:G3} (norm {scale:G3})");
    }

    [Fact]
    public void SubBatchedStepsComputeTheGradientsOfWholeBatchSteps()
    {
        var (whole, wholeStep) = Create(subBatch: null);
        var (cut, cutStep) = Create(subBatch: 2, like: whole);
        var before = whole.parameters().Select(p => p.detach().clone()).ToList();

        for (int i = 0; i < 2; i++)
        {
            var a = wholeStep.Accumulate([PaddedBatch(i)]);
            var b = cutStep.Accumulate([PaddedBatch(i)]);
            Assert.True(float.IsFinite(a["loss"].item<float>()));
            AssertClose(a["loss"], b["loss"]);
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            Assert.Equal(i > 0, a.ContainsKey("loss_distill")); // self-distillation from micro-step 1
            foreach (var (p, q) in whole.parameters().Zip(cut.parameters()))
                AssertClose(p.grad!, q.grad!);
            AssertClose(wholeStep.Update(1e-3), cutStep.Update(1e-3));
        }
        Assert.Equal(2, wholeStep.MicroStep);
        Assert.Contains(whole.parameters().Zip(before), pair => !pair.First.allclose(pair.Second));
        Assert.All(whole.parameters(), p => Assert.True(p.grad is null || p.grad.abs().max().item<float>() == 0, "gradients are cleared after the update"));
    }

    [Fact]
    public void MicroBatchesAreAveraged()
    {
        var noDistill = new LossConfig { UseSelfDistill = false };
        var (single, singleStep) = Create(subBatch: null, loss: noDistill);
        var (twice, twiceStep) = Create(subBatch: null, like: single, loss: noDistill);
        var batch = PaddedBatch(7);

        var one = singleStep.Accumulate([batch]);
        var halves = new[] { twiceStep.Accumulate([batch], 0.5), twiceStep.Accumulate([batch], 0.5) };

        // The same batch twice, each at half weight, gives one batch's gradient.
        AssertClose(one["loss"], halves[1]["loss"]);
        foreach (var (p, q) in single.parameters().Zip(twice.parameters())) AssertClose(p.grad!, q.grad!);

        single.zero_grad();
        twice.zero_grad();
        using var run = twiceStep.Run([[batch], [batch]], 1e-3);
        Assert.Equal(4, twiceStep.MicroStep);
        AssertClose(one["loss"], run.Loss);
    }
}
