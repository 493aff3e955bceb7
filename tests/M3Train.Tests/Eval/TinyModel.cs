using M3Train.Eval;

namespace M3Train.Tests.Eval;

/// <summary>The shipped tiny model, loaded once for the mining and teacher-score tests.</summary>
public sealed class TinyModel : IDisposable
{
    public TorchM3Inference Inference { get; } = TinyInference.Load(batchSize: 32);

    public void Dispose() => Inference.Dispose();
}
