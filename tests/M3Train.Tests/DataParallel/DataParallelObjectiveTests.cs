using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Tests.Training;
using M3Train.Text;
using M3Train.Training;
using M3Train.Training.Losses;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;
using static TorchSharp.torch;

namespace M3Train.Tests.DataParallel;

/// <summary>
/// The unified objective on two data-parallel ranks (<see cref="ThreadRanks"/>) against the spec's formula computed in
/// one process, and against one rank with the whole batch where the two are the same computation.
/// </summary>
public class DataParallelObjectiveTests
{
    const int G = 3;
    static readonly string ModelDir = ThreadRanks.ModelDir;

    static TrainBatch Batch(XlmrTokenizer tok, int first, int count, bool noInBatch, bool hostRows = false)
    {
        var queries = Enumerable.Range(first, count).Select(i => $"what is item {i} of the list about {i % 3}").ToList();
        var passages = Enumerable.Range(first, count).SelectMany(i => new[]
        {
            // Row 4's last negative is row 1's positive: a false negative of row 1 that only the global batch shows.
            $"item {i} is about subject {i % 3} and more", $"noise text number {i * 11}", i == 4 ? "item 1 is about subject 1 and more" : $"an unrelated sentence {i + 40}",
        }).ToList();
        float[]? scores = hostRows ? Enumerable.Range(first * G, count * G).Select(k => 1f - 0.3f * (k % G) + 0.01f * k).ToArray() : null;
        return new TrainBatch(0, 0, 0, "test", 0, [], tok.EncodePadded(queries, 32), tok.EncodePadded(passages, 32),
            scores, G, noInBatch, null, null,
            hostRows ? passages.Select(TextHash.Of).ToArray() : null,
            hostRows ? Enumerable.Range(0, count).Select(r => new[] { TextHash.Of(passages[r * G]) }).ToArray() : null);
    }

    static M3Model Load()
    {
        var c = M3Checkpoint.Load(ModelDir);
        c.Model.train();
        return c.Model;
    }

    /// <summary>
    /// Every gradient within <paramref name="tolerance"/> of the wanted one, relative to that parameter's largest gradient
    /// where it exceeds 1 (the pretrained model's word embeddings reach ~60, where float32 sums in another order differ by
    /// ~1e-6 relative).
    /// </summary>
    static void AssertClose(Dictionary<string, Tensor> want, Dictionary<string, Tensor> got, double tolerance)
    {
        Assert.Equal(want.Keys.Order(), got.Keys.Order());
        foreach (var (k, v) in want)
        {
            double diff = (v - got[k]).abs().max().item<float>(), scale = Math.Max(1, v.abs().max().item<float>());
            Assert.True(diff <= tolerance * scale, $"{k}: max |diff| {diff:E2}, max |gradient| {scale:E2}");
        }
    }

    static M3LossInput Input(M3Representations q, M3Representations p, CrossDeviceDenseScores cross, int groupSize) => new()
    {
        GroupSize = groupSize,
        DenseCrossDevice = cross,
        Sparse = M3Scores.Sparse(q, p),
        Colbert = M3Scores.Colbert(q, p),
    };

    /// <summary>
    /// The spec's formula by hand in one process, for <see cref="ThreadRanks.ModelDir"/> (no dropout) on two ranks' slices: gathered
    /// dense scores, local sparse and multi-vector scores, the mean of the two ranks' losses; with the exact gradient
    /// through every slot, or FlagEmbedding's through each rank's own. No teacher scores and no false-negative mask.
    /// </summary>
    internal static (float Loss, Dictionary<string, Tensor> Grads) HandBuilt(TrainBatch[] halves, LossConfig config, bool exact, long microStep = 3)
    {
        var model = Load();
        var unified = new M3UnifiedLoss(config, AllHeads);
        float loss = 0;
        foreach (int rank in exact ? [-1] : new[] { 0, 1 })
        {
            var reps = halves.Select(b =>
            {
                var (qi, qm) = b.Queries.ToTensors(CPU);
                var (pi, pm) = b.Passages!.ToTensors(CPU);
                return (q: model.Encode(qi, qm), p: model.Encode(pi, pm));
            }).ToList();
            Tensor Slot(Tensor t, int s) => exact || s == rank ? t : t.detach();
            var allQ = cat(reps.Select((r, s) => Slot(r.q.Dense, s)).ToList(), 0);
            var allP = cat(reps.Select((r, s) => Slot(r.p.Dense, s)).ToList(), 0);
            var losses = Enumerable.Range(0, 2).Where(r => exact || r == rank)
                .Select(r => unified.Compute(Input(reps[r].q, reps[r].p, CrossDeviceDenseScores.FromGathered(allQ, allP, r, 2), halves[r].GroupSize), microStep).Loss).ToList();
            var value = exact ? stack(losses).mean() : losses[0];
            value.backward();
            loss += value.item<float>() / (exact ? 1 : 2);
        }
        var grads = ThreadRanks.Grads(model);
        if (!exact) foreach (var g in grads.Values) g.div_(2);
        return (loss, grads);
    }

    [Theory]
    [InlineData(CrossDeviceGradient.Exact, null)]
    [InlineData(CrossDeviceGradient.Exact, 2)]
    [InlineData(CrossDeviceGradient.Local, null)]
    [InlineData(CrossDeviceGradient.Local, 2)]
    public void TwoRanksGiveTheUnifiedStepOfTheHandBuiltTwoReplicaComputation(CrossDeviceGradient gradient, int? subBatch)
    {
        var tok = XlmrTokenizer.FromFolder(ModelDir);
        var halves = new[] { Batch(tok, 0, 4, false), Batch(tok, 4, 4, false) };
        var config = new LossConfig { MaskDuplicateNegatives = false, SelfDistillStartStep = -1, CrossDeviceGradient = gradient };
        var (loss, want) = HandBuilt(halves, config, exact: gradient == CrossDeviceGradient.Exact);

        var ranks = ThreadRanks.Step(2, (model, group) => new UnifiedFinetuneObjective(model, group, new M3BatchLoss(config, AllHeads), subBatch, seed: 1),
            rank => halves[rank]);
        foreach (var rank in ranks)
        {
            Assert.True(Math.Abs(loss - rank.Loss) < 1e-5, $"loss {rank.Loss} vs {loss}");
            AssertClose(want, rank.Grads, 1e-5);
        }
        // The other mode's gradients are far from these: the tolerance tells the two apart.
        var (_, other) = HandBuilt(halves, config, exact: gradient != CrossDeviceGradient.Exact);
        Assert.True(want.Max(kv => (kv.Value - other[kv.Key]).abs().max().item<float>()) > 1e-3);
    }

    /// <summary>
    /// With the dense head alone every rank scores its queries against the whole global batch, so two ranks with half
    /// the rows each are one rank with all of them: the loss, the gradients and the false-negative mask and teacher
    /// scores of the global batch (which the ranks exchange: row 4's negative, on rank 1, is row 1's positive, on rank 0).
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(2)]
    public void DenseOnlyTwoRanksWithHalfTheBatchEqualOneRankWithAllOfIt(int? subBatch)
    {
        var tok = XlmrTokenizer.FromFolder(ModelDir);
        var whole = Batch(tok, 0, 6, false, hostRows: true);
        var halves = new[] { Batch(tok, 0, 3, false, hostRows: true), Batch(tok, 3, 3, false, hostRows: true) };
        var config = new LossConfig { KnowledgeDistillation = true };
        M3Head[] dense = [M3Head.Dense];

        var one = Load();
        var single = new UnifiedFinetuneObjective(one, DataParallelGroup.Alone(CPU), new M3BatchLoss(config, dense), subBatch, 1).Step(whole, new StepContext(1, 0));
        var ranks = ThreadRanks.Step(2, (model, group) => new UnifiedFinetuneObjective(model, group, new M3BatchLoss(config, dense), subBatch, 1),
            rank => halves[rank], microStep: 0);

        Assert.True(single.Figures["masked_negatives"] > 0);
        Assert.Equal(single.Figures["masked_negatives"], ranks.Sum(r => r.Step.Figures["masked_negatives"]));
        foreach (var rank in ranks)
        {
            Assert.True(Math.Abs(single.Loss.item<float>() - rank.Loss) < 1e-5, $"loss {rank.Loss} vs {single.Loss.item<float>()}");
            AssertClose(ThreadRanks.Grads(one), rank.Grads, 1e-5);
        }
    }

    [Fact]
    public void WithoutInBatchNegativesTheGradientIsTheMeanOfTheHalves()
    {
        var tok = XlmrTokenizer.FromFolder(ModelDir);
        var halves = new[] { Batch(tok, 0, 3, true), Batch(tok, 3, 3, true) };
        var config = new LossConfig { MaskDuplicateNegatives = false };
        var perHalf = halves.Select(half =>
        {
            var m = Load();
            new UnifiedFinetuneObjective(m, DataParallelGroup.Alone(CPU), new M3BatchLoss(config, AllHeads), null, 1).Step(half, new StepContext(1, 3));
            return ThreadRanks.Grads(m);
        }).ToList();
        var mean = perHalf[0].ToDictionary(kv => kv.Key, kv => (kv.Value + perHalf[1][kv.Key]) / 2);

        var ranks = ThreadRanks.Step(2, (model, group) => new UnifiedFinetuneObjective(model, group, new M3BatchLoss(config, AllHeads), null, 1),
            rank => halves[rank]);
        foreach (var rank in ranks) AssertClose(mean, rank.Grads, 1e-5);
    }

    /// <summary>
    /// With activation checkpointing the buckets of the encoder's layers are all-reduced while backward goes on below
    /// them; the averaged gradients are the same bits as when every bucket waits for the end of backward.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData(3)]
    public void LayerBucketsStartDuringBackwardAndAverageToTheSameBits(int? subBatch)
    {
        var tok = XlmrTokenizer.FromFolder(ModelDir);
        var halves = new[] { Batch(tok, 0, 4, false), Batch(tok, 4, 4, false) };
        var config = new LossConfig { MaskDuplicateNegatives = false };
        ITrainingObjective Objective(M3Model model, DataParallelGroup group) => new UnifiedFinetuneObjective(model, group, new M3BatchLoss(config, AllHeads), subBatch, 1);
        var overlapped = ThreadRanks.Step(2, Objective, rank => halves[rank], checkpointing: true);
        var serial = ThreadRanks.Step(2, Objective, rank => halves[rank], checkpointing: true, overlap: false);

        Assert.All(overlapped, r => Assert.True(r.OverlappedBuckets > 0, "no bucket started during backward"));
        Assert.All(serial, r => Assert.Equal(0, r.OverlappedBuckets));
        foreach (var (a, b) in overlapped.Zip(serial))
            foreach (var (name, grad) in a.Grads)
                Assert.True(grad.equal(b.Grads[name]).all().item<bool>(), $"{name} differs between overlapped and serial reduction");
    }
}
