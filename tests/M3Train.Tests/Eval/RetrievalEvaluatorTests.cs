using M3Train.Eval;
using M3Train.Model;
using M3Train.Tests.Export;
using M3Train.Tests.Training;
using M3Train.Text;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Eval;

public class RetrievalEvaluatorTests(SampleEvaluation sample, ITestOutputHelper output) : IClassFixture<SampleEvaluation>
{
    RetrievalEvalOptions Cached => sample.First.Options;

    static void AssertSameMetrics(RetrievalReport expected, RetrievalReport actual)
    {
        Assert.Equal(expected.NdcgAt10, actual.NdcgAt10, 9);
        Assert.Equal(expected.RecallAt100, actual.RecallAt100, 9);
        Assert.Equal(expected.MrrAt10, actual.MrrAt10, 9);
        Assert.Equal(expected.QueriesEvaluated, actual.QueriesEvaluated);
    }

    RetrievalReport Report(RetrievalEvaluation evaluation, RetrievalMode mode) => evaluation.Modes.Single(m => m.Mode == mode).Report;

    [Fact]
    public void EveryModeIsEvaluatedOnTheSample()
    {
        var evaluation = sample.First;
        output.WriteLine(evaluation.ToTable());
        Assert.Equal(RetrievalModes.Every, evaluation.Modes.Select(m => m.Mode));
        Assert.Equal(1086, evaluation.Documents);
        Assert.Equal(30, evaluation.Queries);
        Assert.False(evaluation.CacheReused);
        foreach (var mode in evaluation.Modes)
        {
            Assert.Equal(30, mode.Report.QueriesEvaluated);
            Assert.InRange(mode.Report.NdcgAt10, 0, 1);
            Assert.InRange(mode.Report.RecallAt100, 0, 1);
            Assert.InRange(mode.Report.MrrAt10, 0, 1);
        }
        // Each query has one relevant document among 1086: a model that ranks at random finds it in the top 100
        // about 9% of the time; even this tiny model does much better densely.
        Assert.True(Report(evaluation, RetrievalMode.Dense).RecallAt100 > 0.2, evaluation.ToTable());
        Assert.Contains("dense+sparse", evaluation.ToTable());
        Assert.Contains("\"ndcg@10\"", evaluation.ToJson());
    }

    [Fact]
    public void CachedCorpusEncodingsAreReusedAndGiveTheSameReport()
    {
        Assert.True(File.Exists(sample.First.CachePath));
        var again = sample.Evaluate(Cached);
        Assert.True(again.CacheReused);
        Assert.Equal(sample.First.CachePath, again.CachePath);
        Assert.Equal(sample.First.Modes, again.Modes);
    }

    [Fact]
    public void TheCacheKeyFollowsTheMaxLength()
    {
        string other = new CorpusEncodingCache(Cached.CacheDir!, CorpusEncodingCache.KeyOf(sample.ModelHash, sample.Data.CorpusHash, 128)).Path;
        Assert.NotEqual(sample.First.CachePath, other);
        Assert.NotEqual(CorpusEncodingCache.KeyOf(sample.ModelHash, sample.Data.CorpusHash, 128),
            CorpusEncodingCache.KeyOf(sample.ModelHash, ContentHash.OfStrings("another corpus"), 128));
    }

    [Fact]
    public void HybridModesWithOneWeightAreThatScoreAlone()
    {
        // "all" re-ranks the dense candidates: with weights (1, 0, 0) it is the dense order, with (0, 0, 1) the ColBERT order.
        var denseOnly = sample.Evaluate(Cached with { Modes = [RetrievalMode.All, RetrievalMode.DenseSparse], Weights = new M3ScoreWeights(1, 0, 0) });
        AssertSameMetrics(Report(sample.First, RetrievalMode.Dense), Report(denseOnly, RetrievalMode.All));
        AssertSameMetrics(Report(sample.First, RetrievalMode.Dense), Report(denseOnly, RetrievalMode.DenseSparse));
        var colbertOnly = sample.Evaluate(Cached with { Modes = [RetrievalMode.All], Weights = new M3ScoreWeights(0, 0, 1) });
        AssertSameMetrics(Report(sample.First, RetrievalMode.Colbert), Report(colbertOnly, RetrievalMode.All));
    }

    [Fact]
    public void ColbertRerankingOfTheWholeCorpusIsAnExhaustiveColbertSearch()
    {
        // A 150-document slice of the sample with the queries judged on it; with rerank-k above the corpus size every
        // document is a candidate, so the ranking is an exhaustive ColBERT search, recomputed here by brute force.
        var corpus = sample.Data.Corpus.Take(150).ToArray();
        var ids = corpus.Select(d => d.Id).ToHashSet();
        var judgments = sample.Data.Qrels.Judgments.Where(j => j.Value.Keys.Any(ids.Contains))
            .ToDictionary(j => j.Key, j => (IReadOnlyDictionary<string, int>)j.Value.Where(d => ids.Contains(d.Key)).ToDictionary());
        var data = new BeirDataset(corpus, sample.Data.Queries.Where(q => judgments.ContainsKey(q.Id)).ToArray(), new Qrels(judgments),
            "slice", ContentHash.OfStrings("slice"));
        Assert.InRange(data.EvaluatedQueries.Count, 2, 30);
        var evaluation = new RetrievalEvaluator(sample.Inference, TorchSharp.torch.CPU).Evaluate(data,
            new RetrievalEvalOptions { Modes = [RetrievalMode.Colbert], RerankK = 1000, TopK = 10, MaxQueryLength = 64, MaxPassageLength = 128 }, null);

        var encodedCorpus = sample.Inference.Encode(corpus.Select(d => d.EncodingText).ToArray(), 128, EncodingParts.Colbert);
        var queries = data.EvaluatedQueries;
        var encodedQueries = sample.Inference.Encode(queries.Select(q => q.Text).ToArray(), 64, EncodingParts.Colbert);
        var all = Enumerable.Range(0, corpus.Length).ToArray();
        double mrr = 0, ndcg = 0;
        for (int q = 0; q < queries.Count; q++)
        {
            double[] scores = ColbertScorer.Score(encodedQueries, q, encodedCorpus, all, TorchSharp.torch.CPU);
            var ranking = all.OrderByDescending(d => scores[d]).ThenBy(d => d).Take(10).Select(d => corpus[d].Id).ToArray();
            mrr += RetrievalMetrics.MrrAt(ranking, data.Qrels.For(queries[q].Id), 10);
            ndcg += RetrievalMetrics.NdcgAt(ranking, data.Qrels.For(queries[q].Id), 10);
        }
        var report = Report(evaluation, RetrievalMode.Colbert);
        Assert.Equal(mrr / queries.Count, report.MrrAt10, 9);
        Assert.Equal(ndcg / queries.Count, report.NdcgAt10, 9);
    }

    [Fact]
    public void EvaluatesTheTinyModelBeforeAndAfterFineTuning()
    {
        // The fixture's evaluation is "before"; a short fine-tuning run on the sample training data gives "after".
        using var run = new TinyRun();
        var trained = UnifiedFinetuneRecipe.Run(run.Config(maxSteps: 4));
        using var tuned = TorchM3Inference.Load(trained.FinalModel!, TorchSharp.torch.CPU, 32);
        var after = new RetrievalEvaluator(tuned, TorchSharp.torch.CPU).Evaluate(sample.Data, Cached, ContentHash.OfModel(trained.FinalModel!));
        output.WriteLine($"before fine-tuning:\n{sample.First.ToTable()}\nafter {trained.Steps} steps:\n{after.ToTable()}");
        Assert.False(after.CacheReused); // another model, another cache key
        Assert.Equal(RetrievalModes.Every, after.Modes.Select(m => m.Mode));
        Assert.All(after.Modes, m => Assert.Equal(30, m.Report.QueriesEvaluated));
        Assert.NotEqual(sample.First.Modes, after.Modes);
    }
}
