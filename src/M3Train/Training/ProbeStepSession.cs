using System.Diagnostics;
using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The model and optimizer of a run, set up as <see cref="TrainingSetup"/> and <see cref="Trainer"/> set them up (device,
/// precision, activation checkpointing, frozen parts, AdamW), running trial training steps on random token ids: forward
/// and backward through <see cref="UnifiedFinetuneObjective"/>, clipping and one AdamW step, so gradients and optimizer
/// state count as in training.
/// Texts are exactly as long as asked, without padding, as the longest rows of a length bin are.
/// </summary>
public sealed class ProbeStepSession : IDisposable
{
    readonly RunConfig _config;
    readonly M3Checkpoint _checkpoint;
    readonly M3Model _model;
    readonly DataParallelGroup _group;
    readonly M3BatchLoss _loss;
    readonly List<Parameter> _trainable;
    readonly AdamW _optimizer;
    readonly Random _random;
    long _microStep;

    public Device Device { get; }

    public ProbeStepSession(RunConfig config, Device device)
    {
        _config = config;
        Device = device;
        torch.manual_seed(config.Train.Seed);
        _checkpoint = M3Checkpoint.Load(config.Model.Path, new M3CheckpointLoadOptions
        {
            AllowMissing = config.Model.AllowMissingKeys,
            AllowUnexpected = config.Model.AllowUnexpectedKeys,
            ColbertDim = config.Model.ColbertDim,
        });
        var model = _checkpoint.Model;
        TrainingSetup.Prepare(model, config, device);
        TrainingSetup.Freeze(model, config);
        _model = model;
        _group = DataParallelGroup.Alone(device);
        _loss = new M3BatchLoss(config.Loss, config.Model.Heads);
        var named = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        _trainable = named.Select(p => p.parameter).ToList();
        _optimizer = OptimizerFactory.Create(named, config.Train);
        _random = new Random(config.Train.Seed);
    }

    /// <summary>One training step of <paramref name="trial"/>; returns its wall time in seconds (the batch is made before the clock starts).</summary>
    public double Step(ProbeTrial trial)
    {
        var batch = RandomBatch(trial);
        var clock = Stopwatch.StartNew();
        using (var scope = NewDisposeScope())
        {
            var objective = new UnifiedFinetuneObjective(_model, _group, _loss, trial.SubBatch, _config.Train.Seed);
            objective.Step(batch, new StepContext(1, _microStep++));
            GradientClipper.ClipByGlobalNorm(_trainable, _config.Train.MaxGradNorm);
            _optimizer.step();
            _optimizer.zero_grad();
            if (Device.type == DeviceType.CUDA) torch.cuda.synchronize(Device);
        }
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Runs <paramref name="steps"/> steps of <paramref name="trial"/> and measures the peak: on CUDA the device memory
    /// in use (NVML, sampled, and the driver's figure after the last step: libtorch's caching allocator only grows within
    /// a process, so that is its high-water mark), on CPU the peak RSS after returning freed heap memory and resetting the
    /// peak. The time is the last step's.
    /// </summary>
    public ProbeTrialResult Measure(ProbeTrial trial, int steps)
    {
        bool cuda = Device.type == DeviceType.CUDA;
        if (!cuda)
        {
            MemoryProbe.TrimHostHeap();
            MemoryProbe.ResetHostPeak();
        }
        using var sampler = cuda ? new MemoryProbe.DevicePeakSampler(Device.index) : null;
        long? start = cuda ? null : MemoryProbe.HostRssBytes();
        double seconds = 0;
        for (int s = 0; s < steps; s++) seconds = Step(trial);
        long? peak = cuda
            ? Max(sampler!.Available ? sampler.PeakBytes : null, CudaInfo.UsedBytes())
            : MemoryProbe.HostPeakRssBytes();
        return new ProbeTrialResult(false, peak, seconds, peak - start);
    }

    static long? Max(long? a, long? b) => a is long x && b is long y ? Math.Max(x, y) : a ?? b;

    TrainBatch RandomBatch(ProbeTrial trial)
    {
        int g = _config.Data.TrainGroupSize;
        int b = trial.Batch;
        var passageHashes = Enumerable.Range(1, b * g).Select(i => (ulong)i).ToArray();
        var positiveHashes = Enumerable.Range(0, b).Select(q => new[] { passageHashes[q * g] }).ToArray();
        return new TrainBatch(0, (int)_microStep, 0, "probe", 0, Enumerable.Range(0, b).ToArray(),
            RandomTexts(b, trial.QueryLength), RandomTexts(b * g, trial.PassageLength), null, g, false, null, null,
            passageHashes, positiveHashes);
    }

    /// <summary><paramref name="count"/> texts of random ordinary tokens between &lt;s&gt; and &lt;/s&gt;, no padding.</summary>
    EncodedBatch RandomTexts(int count, int length)
    {
        int vocab = _checkpoint.Config.VocabSize;
        var ids = new long[count * length];
        for (int i = 0; i < ids.Length; i++) ids[i] = _random.NextInt64(XlmrTokenizer.UnkId + 1, vocab);
        for (int row = 0; row < count; row++)
        {
            ids[row * length] = XlmrTokenizer.BosId;
            ids[row * length + length - 1] = XlmrTokenizer.EosId;
        }
        var mask = new long[count * length];
        Array.Fill(mask, 1L);
        return new EncodedBatch(ids, mask, count, length);
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _checkpoint.Dispose();
    }
}
