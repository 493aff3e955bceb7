using M3Train.Checkpoints;
using M3Train.Config;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using M3Train.Training.Losses;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// What a recipe sets up before the loop, shared by every recipe: the output folder with its log and resolved config,
/// the state to resume, the model replicas on the configured devices (loaded from the checkpoint or the resumed step,
/// prepared for training, frozen parts fixed), the tokenizer, the seed-synchronized data loaders (one per replica) and
/// the schedule. The recipe builds its objective from <see cref="Replicas"/> and <see cref="Tokenizer"/> and hands both
/// to <see cref="Trainer"/>.
/// <code>
/// config → output folder, run log, resume state → devices → model replicas (checkpoint or resume) → freeze
///        → tokenizer → data (per-replica batch rescaled on resume) → one loader per replica → schedule
/// </code>
/// </summary>
public sealed class TrainingSetup : IDisposable
{
    readonly List<M3Checkpoint> _loaded = [];
    readonly List<TrainDataLoader> _loaders = [];
    readonly RunLog _log;

    /// <param name="config">The run's config.</param>
    /// <param name="options">Resume and the recipe's name.</param>
    /// <param name="withLmHead">Load the masked-LM head with the model (RetroMAE needs it).</param>
    public TrainingSetup(RunConfig config, TrainerOptions options, bool withLmHead = false)
    {
        Options = options;
        Output = Path.GetFullPath(config.OutputDir);
        Checkpoints = new CheckpointManager(Output, config.Train.KeepLast);
        ResumeFrom = options.Resume is null ? null : Checkpoints.ResolveResume(options.Resume);
        if (options.Start is { Step: not 0 }) throw new ArgumentException("a fresh run starts at step 0", nameof(options));
        State = ResumeFrom is null ? options.Start ?? new TrainerState() : TrainerState.Load(ResumeFrom);
        if (ResumeFrom is null && Directory.Exists(Checkpoints.Root) && Checkpoints.List().Count > 0)
            throw new M3TrainException($"{Output} already holds checkpoints of a run: pass --resume latest to continue it, or choose another output_dir.");

        TrainingPreflight.CreateOutputDirectory(Output);
        _log = new RunLog(Output);
        try
        {
            File.WriteAllText(Path.Combine(Output, "config.yaml"), ConfigWriter.ToYaml(config));
            Log.Information("m3train {Recipe}: resolved config\n{Config}", options.Recipe, ConfigWriter.ToYaml(config));
            if (BuildInfo.TorchSharpPatchWarning() is { } unpatched) Log.Warning("{Warning}", unpatched);

            var devices = ResolveDevices(config.Train);
            ComputeThreads.Apply(config.Train.Threads, hostThreads: devices.Count, "train.threads");
            string source = ResumeFrom ?? config.Model.Path;
            if (ResumeFrom is not null)
            {
                Log.Information("Resuming from {Checkpoint} at step {Step}", ResumeFrom, State.Step);
                CheckpointManager.WarnConfigChanges(ResumeFrom, config);
            }
            torch.manual_seed(config.Train.Seed);
            var replicas = new List<M3Model>();
            foreach (var device in devices)
            {
                // Heads missing from the checkpoint are initialized from the run seed, identically on every replica.
                torch.manual_seed(config.Train.Seed);
                var checkpoint = M3Checkpoint.Load(source, new M3CheckpointLoadOptions
                {
                    AllowMissing = config.Model.AllowMissingKeys,
                    AllowUnexpected = config.Model.AllowUnexpectedKeys,
                    ColbertDim = config.Model.ColbertDim,
                    WithLmHead = withLmHead,
                    RequireHeads = ResumeFrom is not null,
                });
                _loaded.Add(checkpoint);
                Prepare(checkpoint.Model, config, device);
                replicas.Add(checkpoint.Model);
            }
            Freeze(replicas, config);
            Replicas = new ReplicaSet<M3Model>(replicas, devices);
            Log.Information("Model {Source}: {Params:N0} parameters, {Trainable:N0} trainable, {Replicas} replica(s) on {Devices}, {Precision}, checkpointing {Ckpt}",
                source, replicas[0].parameters().Sum(p => p.numel()), replicas[0].parameters().Where(p => p.requires_grad).Sum(p => p.numel()),
                devices.Count, string.Join(", ", devices.Select(d => d.ToString())), replicas[0].Precision, config.Train.ActivationCheckpointing);

            Tokenizer = TrainingPreflight.Check(config, _loaded[0]);
            if (ResumeFrom is not null && State.WorldSize != Replicas.WorldSize)
                config = config with { Data = KeepGlobalBatch(config.Data, State.WorldSize, Replicas.WorldSize) };
            Config = config;
            Data = TrainData.Load(config.Data, Tokenizer);
            for (int r = 0; r < replicas.Count; r++)
                _loaders.Add(new TrainDataLoader(Data, Tokenizer, config.Train.Seed, Replicas.WorldSize, Replicas.Rank(r), config.Train.SubBatchSize, State.Loader));

            int accumulation = config.Train.GradientAccumulationSteps;
            int total = State.ResolveTotalSteps(config.Train.MaxSteps ?? Math.Max(1, config.Train.Epochs * _loaders[0].StepsPerEpoch / accumulation));
            Schedule = LrSchedule.FromConfig(config.Train, total);
            Log.Information("Training {Total} steps ({PerEpoch} batches per epoch, accumulation {Acc}), warmup {Warmup} steps, peak lr {Lr}",
                total, _loaders[0].StepsPerEpoch, accumulation, Schedule.WarmupSteps, config.Train.Lr);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The run's config; on a resume with another device count, with the per-replica batch sizes that keep the global batch.</summary>
    public RunConfig Config { get; }

    public TrainerOptions Options { get; }

    /// <summary>The run folder (absolute).</summary>
    public string Output { get; }

    public CheckpointManager Checkpoints { get; }

    /// <summary>The checkpoint folder the run resumes from, or null for a fresh run.</summary>
    public string? ResumeFrom { get; }

    /// <summary>Where the run stands at the start: the resumed checkpoint's state, or step 0.</summary>
    public TrainerState State { get; }

    /// <summary>The model, one replica per device, ready to train.</summary>
    public IReplicaGroup<M3Model> Replicas { get; }

    public XlmrTokenizer Tokenizer { get; }

    public TrainData Data { get; }

    /// <summary>One loader per replica: replica r reads rank r's slice of every planned batch.</summary>
    public IReadOnlyList<TrainDataLoader> Loaders => _loaders;

    /// <summary>The learning rate of every step; its <see cref="LrSchedule.TotalSteps"/> is the run's length.</summary>
    public LrSchedule Schedule { get; }

    /// <summary>Writes the master's weights as a checkpoint folder loadable by HF transformers and FlagEmbedding, in the layout the model came in.</summary>
    public void SaveModel(string directory) =>
        M3CheckpointWriter.Save(Replicas.Master, directory, _loaded[0].Layout, TokenizerSource());

    /// <summary>
    /// Where the tokenizer files are copied from: the folder the model was loaded from, or, once a resumed run has pruned
    /// the checkpoint it started from (train.keep_last), its newest checkpoint, which holds them too.
    /// </summary>
    string TokenizerSource() =>
        Directory.Exists(_loaded[0].Directory) ? _loaded[0].Directory : Checkpoints.Latest() ?? _loaded[0].Directory;

    /// <summary>Fails, naming the dataset, the verbs its rows are for and what <paramref name="verb"/> needs, when a dataset holds rows of another kind.</summary>
    public void RequireRows(RowKind kind, string verb, string needs)
    {
        if (Data.Datasets.FirstOrDefault(d => d.Kind != kind) is { } other)
            throw new M3TrainException(RowShapes.Mismatch(other.Name, other.Kind, verb, needs));
    }

    /// <summary>
    /// Per-replica batch sizes that keep the checkpointed run's global batch on another number of replicas, so the
    /// batch plan (and the position in it) stays the same.
    /// </summary>
    static DataConfig KeepGlobalBatch(DataConfig data, int before, int now)
    {
        if (data.TokensPerBatch is int budget)
        {
            if (budget * (long)before % now != 0)
                throw new M3TrainException($"resuming a {before}-replica run on {now}: data.tokens_per_batch {budget} x {before} does not split into {now} equal slices.");
            int scaled = (int)(budget * (long)before / now);
            Log.Warning("Resuming a {Before}-replica run on {Now} replicas: global batch kept, data.tokens_per_batch per replica {Old} -> {New}", before, now, budget, scaled);
            return data with { TokensPerBatch = scaled };
        }
        var sizes = data.BatchSizes.Select(s => s * before).ToList();
        if (sizes.Any(s => s % now != 0))
            throw new M3TrainException($"resuming a {before}-replica run on {now}: global batch sizes {string.Join(", ", sizes)} do not split into {now} equal slices; resume on a device count that divides them.");
        var perReplica = sizes.Select(s => s / now).ToList();
        Log.Warning("Resuming a {Before}-replica run on {Now} replicas: global batch kept, per-replica data.batch_sizes [{Old}] -> [{New}]",
            before, now, string.Join(", ", data.BatchSizes), string.Join(", ", perReplica));
        return data with { BatchSizes = perReplica };
    }

    static List<Device> ResolveDevices(TrainConfig train)
    {
        if (train.Devices.Count == 0) return [TorchDevices.Resolve(train.Device)];
        if (train.Devices is ["cuda"])
        {
            int n = torch.cuda.is_available() ? torch.cuda.device_count() : 0;
            if (n == 0) TorchDevices.Resolve("cuda");
            return Enumerable.Range(0, n).Select(i => torch.device(DeviceType.CUDA, i)).ToList();
        }
        return train.Devices.Select(TorchDevices.Resolve).ToList();
    }

    /// <summary>Moves a loaded model to its device and sets it up for training as the config says (shared with <see cref="BatchSizeProbe"/>).</summary>
    internal static void Prepare(M3Model model, RunConfig config, Device device)
    {
        model.to(device);
        model.Precision = ResolvePrecision(config.Train.Precision, device);
        model.GradientCheckpointing = config.Train.ActivationCheckpointing;
        model.NormalizeEmbeddings = config.Model.NormalizeEmbeddings;
        model.train();
    }

    static ComputePrecision ResolvePrecision(Precision p, Device device) => p switch
    {
        Precision.Bf16 => ComputePrecision.BFloat16,
        Precision.Fp16 => ComputePrecision.Float16,
        Precision.Fp32 => ComputePrecision.Float32,
        _ => device.type == DeviceType.CUDA ? ComputePrecision.BFloat16 : ComputePrecision.Float32,
    };

    /// <summary>Fixes the parts the config freezes, and the heads it does not train (they keep their weights bit for bit and are still saved).</summary>
    internal static void Freeze(IEnumerable<M3Model> replicas, RunConfig config)
    {
        var frozen = config.Train.FrozenParts();
        var heads = config.Model.Heads;
        foreach (var model in replicas)
        {
            if (frozen.Contains("encoder"))
                foreach (var p in model.Backbone.parameters()) p.requires_grad_(false);
            if (frozen.Contains("sparse") || !heads.Contains(M3Head.Sparse))
                foreach (var p in model.SparseHead.parameters()) p.requires_grad_(false);
            if (frozen.Contains("colbert") || !heads.Contains(M3Head.Colbert))
                foreach (var p in model.ColbertHead.parameters()) p.requires_grad_(false);
            if (model.LmHead is { } lm && frozen.Contains("encoder"))
                foreach (var p in lm.parameters()) p.requires_grad_(false);
        }
    }

    public void Dispose()
    {
        foreach (var l in _loaders) l.Dispose();
        Data?.Dispose();
        foreach (var c in _loaded) c.Dispose();
        _log.Dispose();
    }
}
