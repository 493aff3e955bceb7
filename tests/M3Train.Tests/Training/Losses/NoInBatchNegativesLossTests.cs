using M3Train.Training.Losses;
using TorchSharp;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;

namespace M3Train.Tests.Training.Losses;

public class NoInBatchNegativesLossTests
{
    // The 2x3 example (issue 5): B = 2 queries, G = 3 passages each, positive first.
    static readonly double[,] Dense = { { 0.82, 0.41, 0.13 }, { 0.25, 0.77, 0.30 } };
    static readonly double[,] Sparse = { { 0.30, 0.05, 0.00 }, { 0.10, 0.12, 0.22 } };
    static readonly double[,] Colbert = { { 0.71, 0.52, 0.40 }, { 0.44, 0.60, 0.38 } };

    [Fact]
    public void TwoByThreeExampleByHand()
    {
        // Row 0: CE = log(e^0.82 + e^0.41 + e^0.13) - 0.82; row 1: log(e^0.25 + e^0.77 + e^0.30) - 0.25.
        double row0 = Math.Log(Math.Exp(0.82) + Math.Exp(0.41) + Math.Exp(0.13)) - 0.82;
        double row1 = Math.Log(Math.Exp(0.25) + Math.Exp(0.77) + Math.Exp(0.30)) - 0.25;
        Assert.Equal((row0 + row1) / 2, Value(NoInBatchNegativesLoss.Compute(ToTensor(Dense))), 12);
    }

    [Fact]
    public void LocalBlockTakesEachQuerysOwnGroup()
    {
        var inBatch = new double[2, 6];
        for (int r = 0; r < 2; r++)
            for (int j = 0; j < 6; j++) inBatch[r, j] = 10 * r + j;
        var local = NoInBatchNegativesLoss.LocalBlock(ToTensor(inBatch), 3);
        Assert.Equal(new double[] { 0, 1, 2, 13, 14, 15 }, local.data<double>().ToArray());
    }

    [Fact]
    public void UnifiedLossUsesTheLocalEnsembleNotFlagEmbeddingsOneColumn()
    {
        const double tau = 0.02;
        var config = new LossConfig { Temperature = tau, SelfDistillStartStep = -1 };
        var result = new M3UnifiedLoss(config, AllHeads).Compute(new M3LossInput
        {
            GroupSize = 3,
            InBatchNegatives = false,
            Dense = ToTensor(Dense),
            Sparse = ToTensor(Sparse),
            Colbert = ToTensor(Colbert),
        }, microStep: 0);

        var d = Scale(Dense, 1 / tau);
        var s = Scale(Sparse, 1 / tau);
        var c = Scale(Colbert, 1 / tau);
        var ensemble = Combine((1.0, d), (0.3, s), (1.0, c));
        double lInter = InfoNce(ensemble, 3);
        double l = (InfoNce(d, 3) + lInter + 0.1 * InfoNce(s, 3) + InfoNce(c, 3)) / 4;
        double lPrime = (SelfDistill(d, ensemble) + 0.1 * SelfDistill(s, ensemble) + SelfDistill(c, ensemble)) / 3;

        Assert.True(lInter > 0.01, "the local ensemble has three columns, so its loss is not the defect's constant 0");
        Assert.Equal(lInter, Value(result.LossEnsemble!), 9);
        Assert.Equal(lPrime, Value(result.LossDistill!), 9);
        Assert.Equal((l + lPrime) / 2, Value(result.Loss), 9);
    }
}
