using M3Train.Eval;
using M3Train.Tests.Export;

namespace M3Train.Tests.Eval;

/// <summary>The shipped tiny model, evaluated once on the shipped BEIR sample with a fresh corpus cache; the tests reuse that cache.</summary>
public sealed class SampleEvaluation : IDisposable
{
    public SampleEvaluation()
    {
        Inference = TinyInference.Load(batchSize: 32);
        Data = TinyInference.SampleSet();
        ModelHash = ContentHash.OfModel(TinyInference.ModelDir);
        First = Evaluate(new RetrievalEvalOptions { MaxQueryLength = 32, MaxPassageLength = 64, CacheDir = CacheDir });
    }

    public TorchM3Inference Inference { get; }

    public BeirDataset Data { get; }

    public string ModelHash { get; }

    readonly TempFolder _cache = new();

    public string CacheDir => _cache.Path;

    public RetrievalEvaluation First { get; }

    public RetrievalEvaluation Evaluate(RetrievalEvalOptions options) =>
        new RetrievalEvaluator(Inference, TorchSharp.torch.CPU).Evaluate(Data, options, ModelHash);

    public void Dispose()
    {
        Inference.Dispose();
        _cache.Dispose();
    }
}
