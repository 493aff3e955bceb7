using M3Train.Training.Losses;
using TorchSharp;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Losses;

public class M3UnifiedLossTests
{
    const double Tau = 0.02;
    const int G = 3;

    // B = 2 queries, G = 3: similarities [2, 6] per head.
    static readonly double[,] Dense = Random(new Random(41), 2, 6, 0.9);
    static readonly double[,] Sparse = Random(new Random(42), 2, 6, 0.5);
    static readonly double[,] Colbert = Random(new Random(43), 2, 6, 0.8);
    static readonly double[] TeacherScores = [96.5, 87.5, 92.1, 84.9, 91.2, 99.4];

    static M3LossInput Input(Tensor? teacher = null, Tensor? exclude = null) => new()
    {
        GroupSize = G,
        Dense = ToTensor(Dense),
        Sparse = ToTensor(Sparse),
        Colbert = ToTensor(Colbert),
        TeacherScores = teacher,
        ExcludeMask = exclude,
    };

    static (double[,] D, double[,] S, double[,] C) Logits() => (Scale(Dense, 1 / Tau), Scale(Sparse, 1 / Tau), Scale(Colbert, 1 / Tau));

    [Fact]
    public void ReferenceCombinationWithoutSelfDistillationAtStepZero()
    {
        var result = new M3UnifiedLoss(new LossConfig(), AllHeads).Compute(Input(), microStep: 0);
        var (d, s, c) = Logits();
        var ensemble = Combine((1.0, d), (0.3, s), (1.0, c));
        double l = (InfoNce(d, G) + InfoNce(ensemble, G) + 0.1 * InfoNce(s, G) + InfoNce(c, G)) / 4;

        Assert.Equal(l, Value(result.Loss), 10);
        Assert.Equal(InfoNce(d, G), Value(result.LossDense!), 10);
        Assert.Equal(InfoNce(s, G), Value(result.LossSparse!), 10);
        Assert.Equal(InfoNce(c, G), Value(result.LossColbert!), 10);
        Assert.Equal(InfoNce(ensemble, G), Value(result.LossEnsemble!), 10);
        Assert.Null(result.LossDistill);
    }

    [Fact]
    public void SelfDistillationFromTheSecondMicroStep()
    {
        var loss = new M3UnifiedLoss(new LossConfig(), AllHeads);
        var result = loss.Compute(Input(), microStep: 1);
        var (d, s, c) = Logits();
        var ensemble = Combine((1.0, d), (0.3, s), (1.0, c));
        double l = (InfoNce(d, G) + InfoNce(ensemble, G) + 0.1 * InfoNce(s, G) + InfoNce(c, G)) / 4;
        double lPrime = (SelfDistill(d, ensemble) + 0.1 * SelfDistill(s, ensemble) + SelfDistill(c, ensemble)) / 3;

        Assert.Equal((l + lPrime) / 2, Value(result.Loss), 10);
        Assert.Equal(lPrime, Value(result.LossDistill!), 10);
        Assert.False(loss.SelfDistillActive(0));
        Assert.True(new M3UnifiedLoss(new LossConfig { SelfDistillStartStep = -1 }, AllHeads).SelfDistillActive(0));
        Assert.False(new M3UnifiedLoss(new LossConfig { UseSelfDistill = false }, AllHeads).SelfDistillActive(100));
    }

    [Theory]
    [InlineData(KdLossType.M3KdLoss)]
    [InlineData(KdLossType.KlDiv)]
    public void TeacherScoresReplaceEveryCrossEntropy(KdLossType kind)
    {
        var result = new M3UnifiedLoss(new LossConfig { KdLossType = kind }, AllHeads).Compute(
            Input(teacher: torch.tensor(TeacherScores, ScalarType.Float64)), microStep: 1);
        var (d, s, c) = Logits();
        var t = ReferenceLosses.TeacherTargets(TeacherScores, G);
        Func<double[,], double> head = kind == KdLossType.M3KdLoss ? m => M3Kd(m, t, G) : m => KlDiv(m, t, G);
        var ensemble = Combine((1.0, d), (0.3, s), (1.0, c));
        double l = (head(d) + head(ensemble) + 0.1 * head(s) + head(c)) / 4;
        double lPrime = (SelfDistill(d, ensemble) + 0.1 * SelfDistill(s, ensemble) + SelfDistill(c, ensemble)) / 3;
        Assert.Equal((l + lPrime) / 2, Value(result.Loss), 10);
    }

    [Fact]
    public void DenseAndSparseOnly()
    {
        var result = new M3UnifiedLoss(new LossConfig(), [M3Head.Sparse, M3Head.Dense]).Compute(Input() with { Colbert = null }, microStep: 1);
        var (d, s, _) = Logits();
        var ensemble = Combine((1.0, d), (0.3, s));
        double l = (InfoNce(d, G) + InfoNce(ensemble, G) + 0.1 * InfoNce(s, G)) / 3;
        double lPrime = (SelfDistill(d, ensemble) + 0.1 * SelfDistill(s, ensemble)) / 2;

        Assert.Equal((l + lPrime) / 2, Value(result.Loss), 10);
        Assert.Null(result.LossColbert);
        Assert.NotNull(result.LossEnsemble);
    }

    [Fact]
    public void OneHeadHasNoEnsembleAndNoSelfDistillation()
    {
        var result = new M3UnifiedLoss(new LossConfig(), [M3Head.Colbert])
            .Compute(Input() with { Dense = null, Sparse = null }, microStep: 7);
        Assert.Equal(InfoNce(Scale(Colbert, 1 / Tau), G), Value(result.Loss), 10);
        Assert.Null(result.LossDense);
        Assert.Null(result.LossEnsemble);
        Assert.Null(result.LossDistill);
    }

    [Fact]
    public void WithoutUnifiedFinetuningOnlyDenseTrains()
    {
        var loss = new M3UnifiedLoss(new LossConfig { UnifiedFinetuning = false }, AllHeads);
        Assert.Equal([M3Head.Dense], loss.Heads);
        var result = loss.Compute(Input(), microStep: 3);
        Assert.Equal(InfoNce(Scale(Dense, 1 / Tau), G), Value(result.Loss), 10);
        Assert.Null(result.LossSparse);
    }

    [Fact]
    public void AnEnabledHeadWithoutScoresIsAnError() =>
        Assert.Throws<ArgumentException>(() => new M3UnifiedLoss(new LossConfig(), AllHeads).Compute(Input() with { Sparse = null }, 0));

    [Fact]
    public void DuplicatedPassageIsMaskedInEveryLoss()
    {
        // Query 0's positive text reappears as query 1's first negative (passage 4).
        string[] passages = ["arctic circle", "tromso", "kirkenes", "pendleton act", "arctic circle", "garfield"];
        var mask = FalseNegativeMask.Build(passages, G);
        Assert.Equal(1, mask.MaskedColumns);
        var exclude = new bool[2, 6];
        exclude[0, 4] = true;
        Assert.Equal(exclude.Cast<bool>(), mask.Mask.data<bool>().ToArray());

        var result = new M3UnifiedLoss(new LossConfig(), AllHeads).Compute(Input(exclude: mask.Mask), microStep: 1);
        var (d, s, c) = Logits();
        var ensemble = Combine((1.0, d), (0.3, s), (1.0, c));
        double l = (InfoNce(d, G, exclude) + InfoNce(ensemble, G, exclude) + 0.1 * InfoNce(s, G, exclude) + InfoNce(c, G, exclude)) / 4;
        double lPrime = (SelfDistill(d, ensemble, exclude) + 0.1 * SelfDistill(s, ensemble, exclude) + SelfDistill(c, ensemble, exclude)) / 3;

        // Row 0 by hand: the dense InfoNCE without column 4.
        double row0 = Math.Log(new[] { 0, 1, 2, 3, 5 }.Sum(j => Math.Exp(d[0, j]))) - d[0, 0];
        double row1 = Math.Log(Enumerable.Range(0, 6).Sum(j => Math.Exp(d[1, j]))) - d[1, 3];
        Assert.Equal((row0 + row1) / 2, Value(result.LossDense!), 10);
        Assert.Equal((l + lPrime) / 2, Value(result.Loss), 10);
        Assert.NotEqual(Value(new M3UnifiedLoss(new LossConfig(), AllHeads).Compute(Input(), 1).Loss), Value(result.Loss), 6);
    }

    [Fact]
    public void DuplicatedPassageWithTeacherScores()
    {
        // Query 1's second negative duplicates its own positive: that column is excluded and, in m3_kd_loss, its step adds nothing.
        string[] passages = ["a", "b", "c", "d", "e", "d"];
        var mask = FalseNegativeMask.Build(passages, G);
        var exclude = new bool[2, 6];
        exclude[1, 5] = true;
        Assert.Equal(exclude.Cast<bool>(), mask.Mask.data<bool>().ToArray());

        var result = new M3UnifiedLoss(new LossConfig(), AllHeads).Compute(
            Input(teacher: torch.tensor(TeacherScores, ScalarType.Float64), exclude: mask.Mask), microStep: 1);
        var (d, s, c) = Logits();
        var t = ReferenceLosses.TeacherTargets(TeacherScores, G);
        var ensemble = Combine((1.0, d), (0.3, s), (1.0, c));
        double l = (M3Kd(d, t, G, exclude) + M3Kd(ensemble, t, G, exclude) + 0.1 * M3Kd(s, t, G, exclude) + M3Kd(c, t, G, exclude)) / 4;
        double lPrime = (SelfDistill(d, ensemble, exclude) + 0.1 * SelfDistill(s, ensemble, exclude) + SelfDistill(c, ensemble, exclude)) / 3;
        Assert.Equal((l + lPrime) / 2, Value(result.Loss), 10);
    }

    [Fact]
    public void NoInBatchNegativesWithTeacherRunsTheTeacherLossOnTheLocalBlock()
    {
        var local = new[] { Dense, Sparse, Colbert }.Select(m => new double[,]
            { { m[0, 0], m[0, 1], m[0, 2] }, { m[1, 3], m[1, 4], m[1, 5] } }).ToArray();
        var input = new M3LossInput
        {
            GroupSize = G,
            InBatchNegatives = false,
            Dense = ToTensor(local[0]),
            Sparse = ToTensor(local[1]),
            Colbert = ToTensor(local[2]),
            TeacherScores = torch.tensor(TeacherScores, ScalarType.Float64),
        };
        var t = ReferenceLosses.TeacherTargets(TeacherScores, G);
        var (d, s, c) = (Scale(local[0], 1 / Tau), Scale(local[1], 1 / Tau), Scale(local[2], 1 / Tau));
        var ensemble = Combine((1.0, d), (0.3, s), (1.0, c));
        // m3_kd_loss on the local [B, G] scores with target column i; kl_div's local term plus the hard labels.
        double m3 = (M3Kd(d, t, G) + M3Kd(ensemble, t, G) + 0.1 * M3Kd(s, t, G) + M3Kd(c, t, G)) / 4;
        double klDiv = (KlDiv(d, t, G) + KlDiv(ensemble, t, G) + 0.1 * KlDiv(s, t, G) + KlDiv(c, t, G)) / 4;
        Assert.Equal(m3, Value(new M3UnifiedLoss(new LossConfig { KdLossType = KdLossType.M3KdLoss, UseSelfDistill = false }, AllHeads).Compute(input, 0).Loss), 10);
        Assert.Equal(klDiv, Value(new M3UnifiedLoss(new LossConfig { KdLossType = KdLossType.KlDiv, UseSelfDistill = false }, AllHeads).Compute(input, 0).Loss), 10);
    }

    [Fact]
    public void LocalM3KdLossMatchesAHandComputedValue()
    {
        // One head, τ = 1, no in-batch negatives: L = m3_kd_loss on S [2, 3] with t = softmax(teacher scores).
        // Step 0 targets column 0 of all three; step 1 targets column 1 with column 0 masked; step 2 column 2 alone (0).
        double[,] s = { { 1.0, 0.0, 2.0 }, { 0.5, 1.5, -1.0 } };
        double[,] t = { { 0.6, 0.3, 0.1 }, { 0.2, 0.5, 0.3 } };
        double step0 = (0.6 * (Math.Log(Math.Exp(1.0) + Math.Exp(0.0) + Math.Exp(2.0)) - 1.0)
                      + 0.2 * (Math.Log(Math.Exp(0.5) + Math.Exp(1.5) + Math.Exp(-1.0)) - 0.5)) / 2;
        double step1 = (0.3 * (Math.Log(Math.Exp(0.0) + Math.Exp(2.0)) - 0.0)
                      + 0.5 * (Math.Log(Math.Exp(1.5) + Math.Exp(-1.0)) - 1.5)) / 2;
        Assert.Equal(0.898197, step0 + step1, 6);

        var teacherScores = new double[6];
        for (int i = 0; i < 6; i++) teacherScores[i] = Math.Log(t[i / 3, i % 3]);   // softmax(log t) = t
        var input = new M3LossInput
        {
            GroupSize = 3,
            InBatchNegatives = false,
            Dense = ToTensor(s),
            TeacherScores = torch.tensor(teacherScores, ScalarType.Float64),
        };
        var loss = new M3UnifiedLoss(new LossConfig { Temperature = 1.0 }, [M3Head.Dense]).Compute(input, 0);
        Assert.Equal(step0 + step1, Value(loss.Loss), 10);
        // Not the soft cross-entropy to the teacher that the local case used to take (1.4646 here).
        Assert.NotEqual(KlDiv(s, t, 3, hard: false), Value(loss.Loss), 3);
    }

    [Fact]
    public void PartsAreDetachedScalarsOnTheScoresDevice()
    {
        var input = Input() with { Dense = ToTensor(Dense).requires_grad_() };
        var result = new M3UnifiedLoss(new LossConfig(), AllHeads).Compute(input, microStep: 1);
        Assert.True(result.Loss.requires_grad);
        foreach (var part in new[] { result.LossDense, result.LossSparse, result.LossColbert, result.LossEnsemble, result.LossDistill })
        {
            Assert.NotNull(part);
            Assert.False(part.requires_grad);
            Assert.Equal(0, part.dim());
            Assert.Equal(DeviceType.CPU, part.device_type);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void GradientsMatchFiniteDifferencesInDoublePrecision(long microStep)
    {
        // All heads, teacher scores (m3_kd_loss) and two masked duplicates; at micro-step 1 also self-distillation.
        // Self-distillation's teacher is detached, so there the finite differences are taken of the reference
        // formula with the teacher frozen at the unperturbed scores; at micro-step 0 of M3UnifiedLoss itself.
        const double tau = 0.05;
        var exclude = new bool[2, 6];
        exclude[0, 4] = true;
        exclude[1, 5] = true;
        var loss = new M3UnifiedLoss(new LossConfig { Temperature = tau }, AllHeads);
        double[][,] heads = [(double[,])Dense.Clone(), (double[,])Sparse.Clone(), (double[,])Colbert.Clone()];
        var teacher = torch.tensor(TeacherScores, ScalarType.Float64);
        var t = ReferenceLosses.TeacherTargets(TeacherScores, G);
        var frozen = Softmax(Combine((1 / tau, heads[0]), (0.3 / tau, heads[1]), (1 / tau, heads[2])), exclude);

        double Unified(Tensor[] scores, bool backward)
        {
            var result = loss.Compute(new M3LossInput
            {
                GroupSize = G,
                Dense = scores[0],
                Sparse = scores[1],
                Colbert = scores[2],
                TeacherScores = teacher,
                ExcludeMask = ToTensor(exclude),
            }, microStep);
            if (backward) result.Loss.backward();
            return Value(result.Loss);
        }

        double FrozenTeacherReference(double[][,] h)
        {
            var (d, s, c) = (Scale(h[0], 1 / tau), Scale(h[1], 1 / tau), Scale(h[2], 1 / tau));
            var ensemble = Combine((1.0, d), (0.3, s), (1.0, c));
            double l = (M3Kd(d, t, G, exclude) + M3Kd(ensemble, t, G, exclude) + 0.1 * M3Kd(s, t, G, exclude) + M3Kd(c, t, G, exclude)) / 4;
            double lPrime = (CrossEntropyTo(d, frozen, exclude) + 0.1 * CrossEntropyTo(s, frozen, exclude) + CrossEntropyTo(c, frozen, exclude)) / 3;
            return (l + lPrime) / 2;
        }

        Func<double[][,], double> function = microStep == 0
            ? h => Unified(h.Select(ToTensor).ToArray(), backward: false)
            : FrozenTeacherReference;
        var inputs = heads.Select(h => ToTensor(h).requires_grad_()).ToArray();
        double value = Unified(inputs, backward: true);
        if (microStep == 1) Assert.Equal(FrozenTeacherReference(heads), value, 10);

        const double step = 1e-6;
        double worst = 0, largest = 0;
        for (int k = 0; k < 3; k++)
            for (int r = 0; r < 2; r++)
                for (int j = 0; j < 6; j++)
                {
                    double saved = heads[k][r, j];
                    heads[k][r, j] = saved + step;
                    double up = function(heads);
                    heads[k][r, j] = saved - step;
                    double down = function(heads);
                    heads[k][r, j] = saved;
                    double analytic = inputs[k].grad![r, j].item<double>();
                    worst = Math.Max(worst, Math.Abs((up - down) / (2 * step) - analytic));
                    largest = Math.Max(largest, Math.Abs(analytic));
                    if (exclude[r, j]) Assert.Equal(0.0, analytic);
                }
        Assert.True(largest > 0.1, $"gradients should not vanish, largest {largest}");
        Assert.True(worst < 1e-6 * largest, $"max |finite difference - autograd| = {worst:E3}, largest gradient {largest:E3}");
    }
}
