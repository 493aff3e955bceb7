using M3Train.Training.Losses;
using TorchSharp;
using Xunit;
using static M3Train.Tests.Training.Losses.ReferenceLosses;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Losses;

public class CrossDeviceDenseScoresTests
{
    const int W = 2, B = 2, G = 2, D = 4;

    static double[,] Embeddings(int seed, int rows) => Random(new Random(seed), rows, D, 0.5);

    static double[,] Product(double[,] a, double[,] b)
    {
        var m = new double[a.GetLength(0), b.GetLength(0)];
        for (int i = 0; i < a.GetLength(0); i++)
            for (int j = 0; j < b.GetLength(0); j++)
                for (int k = 0; k < D; k++) m[i, j] += a[i, k] * b[j, k];
        return m;
    }

    [Fact]
    public void GlobalScoresTargetsAndTheRanksLocalBlock()
    {
        var q = Embeddings(51, W * B);
        var p = Embeddings(52, W * B * G);
        var scores = CrossDeviceDenseScores.FromGathered(ToTensor(q), ToTensor(p), rank: 1, worldSize: W);

        var global = Product(q, p);
        Assert.Equal(global.Cast<double>(), scores.Global.data<double>().ToArray(), (a, b) => Math.Abs(a - b) < 1e-12);
        Assert.Equal(new long[] { 0, 2, 4, 6 }, scores.Targets.data<long>().ToArray());
        Assert.Equal(new long[] { B, B * G }, scores.Local.shape);
        for (int r = 0; r < B; r++)
            for (int j = 0; j < B * G; j++)
                Assert.Equal(global[B + r, B * G + j], scores.Local[r, j].item<double>(), 12);
    }

    [Fact]
    public void DenseLossRunsOverAllRowsAndTheEnsembleOverTheLocalBlock()
    {
        const double tau = 0.05;
        var q = Embeddings(53, W * B);
        var p = Embeddings(54, W * B * G);
        var sparse = Random(new Random(55), B, B * G, 0.4);
        var colbert = Random(new Random(56), B, B * G, 0.7);
        var cross = CrossDeviceDenseScores.FromGathered(ToTensor(q), ToTensor(p), rank: 0, worldSize: W);
        var result = new M3UnifiedLoss(new LossConfig { Temperature = tau }, AllHeads).Compute(new M3LossInput
        {
            GroupSize = G,
            DenseCrossDevice = cross,
            Sparse = ToTensor(sparse),
            Colbert = ToTensor(colbert),
        }, microStep: 1);

        var global = Scale(Product(q, p), 1 / tau);
        var local = new double[B, B * G];
        for (int r = 0; r < B; r++)
            for (int j = 0; j < B * G; j++) local[r, j] = global[r, j];
        var (s, c) = (Scale(sparse, 1 / tau), Scale(colbert, 1 / tau));
        var ensemble = Combine((1.0, local), (0.3, s), (1.0, c));
        double lDense = InfoNce(global, G);
        double l = (lDense + InfoNce(ensemble, G) + 0.1 * InfoNce(s, G) + InfoNce(c, G)) / 4;
        double lPrime = (SelfDistill(local, ensemble) + 0.1 * SelfDistill(s, ensemble) + SelfDistill(c, ensemble)) / 3;

        Assert.Equal(lDense, Value(result.LossDense!), 10);
        Assert.Equal((l + lPrime) / 2, Value(result.Loss), 10);
    }

    [Fact]
    public void GlobalMaskAppliesToTheDenseLossAndItsBlockToTheRest()
    {
        // Query 2's positive "p2" (rank 1's first query) reappears as query 3's negative, column 7.
        string[] passages = ["p0", "n0", "p1", "n1", "p2", "n2", "p3", "p2"];
        var mask = FalseNegativeMask.Build(passages, G);
        Assert.Equal(new long[] { W * B, W * B * G }, mask.Mask.shape);
        Assert.Equal(1, mask.MaskedColumns); // row 2 (positive "p2" at column 4) excludes column 7
        var block = FalseNegativeMask.LocalBlock(mask.Mask, rank: 1, localQueries: B, groupSize: G);
        Assert.True(block[0, 3].item<bool>());
        Assert.Equal(1, block.sum().item<long>());

        const double tau = 0.05;
        var q = Embeddings(57, W * B);
        var p = Embeddings(58, W * B * G);
        var sparse = Random(new Random(59), B, B * G, 0.4);
        var result = new M3UnifiedLoss(new LossConfig { Temperature = tau }, [M3Head.Dense, M3Head.Sparse]).Compute(new M3LossInput
        {
            GroupSize = G,
            DenseCrossDevice = CrossDeviceDenseScores.FromGathered(ToTensor(q), ToTensor(p), rank: 1, worldSize: W),
            Sparse = ToTensor(sparse),
            ExcludeMask = mask.Mask,
        }, microStep: 1);

        var globalExclude = new bool[W * B, W * B * G];
        globalExclude[2, 7] = true;
        var localExclude = new bool[B, B * G];
        localExclude[0, 3] = true;
        var global = Scale(Product(q, p), 1 / tau);
        var local = new double[B, B * G];
        for (int r = 0; r < B; r++)
            for (int j = 0; j < B * G; j++) local[r, j] = global[B + r, B * G + j];
        var s = Scale(sparse, 1 / tau);
        var ensemble = Combine((1.0, local), (0.3, s));
        double lDense = InfoNce(global, G, globalExclude);
        double l = (lDense + InfoNce(ensemble, G, localExclude) + 0.1 * InfoNce(s, G, localExclude)) / 3;
        double lPrime = (SelfDistill(local, ensemble, localExclude) + 0.1 * SelfDistill(s, ensemble, localExclude)) / 2;
        Assert.Equal(lDense, Value(result.LossDense!), 10);
        Assert.Equal((l + lPrime) / 2, Value(result.Loss), 10);
    }
}
