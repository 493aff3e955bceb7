using M3Train.Checkpoints;
using M3Train.Config;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Distributed;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using M3Train.Training.Losses;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// What a recipe sets up before the loop, shared by every recipe: this process's rank in the job (one process per
/// device; a world of one unless the caller started a multi-process job), the output folder with its log and resolved
/// config (rank 0 writes it; every other rank logs to <c>logs/rank-R.jsonl</c> there), the state to resume, the model on
/// the rank's device (loaded from the checkpoint or the resumed step, prepared for training, frozen parts fixed), the
/// tokenizer, the rank's slice of the seed-synchronized data plan and the schedule. The recipe builds its objective from
/// <see cref="Model"/>, <see cref="Group"/> and <see cref="Tokenizer"/> and hands both to <see cref="Trainer"/>.
/// <code>
/// config → resume state → rank and device → output folder and run log (rank 0; the others wait) → model (checkpoint
///        or resume) → freeze → tokenizer → data (per-rank batch rescaled on resume) → this rank's loader → schedule
/// </code>
/// </summary>
/// <remarks>
/// Every rank reads the model, the data and, on resume, the checkpoint itself: the run folder and the data must be
/// visible to every rank (a shared file system when ranks run on several machines).
/// </remarks>
public sealed class TrainingSetup : IDisposable
{
    /// <summary>How long the other ranks wait while rank 0 prepares the output folder.</summary>
    static readonly TimeSpan OutputWait = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long ranks wait for each other at the end of setup: loading the model and indexing the data may take one rank
    /// much longer than another, and the first collective after setup would otherwise time out.
    /// </summary>
    static readonly TimeSpan SetupWait = TimeSpan.FromMinutes(60);

    readonly M3Checkpoint? _loaded;
    readonly TrainDataLoader? _loader;
    readonly RunLog? _log;
    readonly DistributedContext? _ownContext;

    /// <param name="config">The run's config.</param>
    /// <param name="options">Resume, the recipe's name and the job this process is a rank of.</param>
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

        if (options.Distributed is null && RankDevices.ProcessesFor(config.Train) > 1)
            throw new M3TrainException(
                $"train.devices asks for {RankDevices.ProcessesFor(config.Train)} devices: data parallelism runs one process per device. " +
                "Run it through m3train finetune or pretrain (which start one process per device), m3train launch, torchrun or srun.");
        Distributed = options.Distributed ?? (_ownContext = DistributedContext.Start(LaunchEnvironment.SingleProcess,
            RankDevices.For(config.Train, LaunchEnvironment.SingleProcess)));
        Group = new DataParallelGroup(Distributed.Collectives, Distributed.Device);
        try
        {
            if (Group.IsMain)
            {
                TrainingPreflight.CreateOutputDirectory(Output);
                _log = new RunLog(Output);
                File.WriteAllText(Path.Combine(Output, "config.yaml"), ConfigWriter.ToYaml(config));
                Log.Information("m3train {Recipe}: resolved config\n{Config}", options.Recipe, ConfigWriter.ToYaml(config));
            }
            // The other ranks write only their own log into the run folder, once rank 0 has made it.
            Distributed.Store?.Barrier("setup/output", Group.IsMain ? null : OutputWait);
            if (!Group.IsMain) _log = new RunLog(Path.Combine(Output, "logs"), $"rank-{Group.Rank}.jsonl");
            if (BuildInfo.TorchSharpPatchWarning() is { } unpatched) Log.Warning("{Warning}", unpatched);

            var device = Group.Device;
            ComputeThreads.Apply(config.Train.Threads, hostThreads: 1, "train.threads", ranksOnMachine: Distributed.Launch.RanksSharingCores);
            string source = ResumeFrom ?? config.Model.Path;
            if (ResumeFrom is not null)
            {
                Log.Information("Resuming from {Checkpoint} at step {Step}", ResumeFrom, State.Step);
                if (Group.IsMain) CheckpointManager.WarnConfigChanges(ResumeFrom, config);
            }
            // Heads missing from the checkpoint are initialized from the run seed, identically on every rank.
            torch.manual_seed(config.Train.Seed);
            _loaded = M3Checkpoint.Load(source, new M3CheckpointLoadOptions
            {
                AllowMissing = config.Model.AllowMissingKeys,
                AllowUnexpected = config.Model.AllowUnexpectedKeys,
                ColbertDim = config.Model.ColbertDim,
                WithLmHead = withLmHead,
                RequireHeads = ResumeFrom is not null,
            });
            Model = _loaded.Model;
            Prepare(Model, config, device);
            Freeze(Model, config);
            Log.Information("Model {Source}: {Params:N0} parameters, {Trainable:N0} trainable, rank {Rank} of {World} on {Device}, {Precision}, checkpointing {Ckpt}",
                source, Model.parameters().Sum(p => p.numel()), Model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()),
                Group.Rank, Group.WorldSize, device, Model.Precision, config.Train.ActivationCheckpointing);

            Tokenizer = TrainingPreflight.Check(config, _loaded);
            if (ResumeFrom is not null && KeepGlobalBatch(config.Data, SavedData(ResumeFrom) ?? config.Data, State.WorldSize, Group.WorldSize) is { } kept)
            {
                config = config with { Data = kept };
                // The run folder's config says what the next checkpoint trained with, so a later resume keeps the same global batch.
                if (Group.IsMain) File.WriteAllText(Path.Combine(Output, "config.yaml"), ConfigWriter.ToYaml(config));
            }
            Config = config;
            Data = TrainData.Load(config.Data, Tokenizer);
            if (options.Rows is { } rows) RequireRows(rows);
            _loader = new TrainDataLoader(Data, Tokenizer, config.Train.Seed, Group.WorldSize, Group.Rank, SubBatching.Of(config.Train).Of, State.Loader);
            LogGlobalBatch(config);

            int accumulation = config.Train.GradientAccumulationSteps;
            int total = State.ResolveTotalSteps(config.Train.MaxSteps ?? Math.Max(1, config.Train.Epochs * _loader.StepsPerEpoch / accumulation));
            Schedule = LrSchedule.FromConfig(config.Train, total);
            Log.Information("Training {Total} steps ({PerEpoch} batches per epoch, accumulation {Acc}), warmup {Warmup} steps, peak lr {Lr}",
                total, _loader.StepsPerEpoch, accumulation, Schedule.WarmupSteps, config.Train.Lr);
            Distributed.Store?.Barrier("setup/ready", SetupWait);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The run's config; on a resume with another number of ranks, with the per-rank batch sizes that keep the global batch.</summary>
    public RunConfig Config { get; }

    public TrainerOptions Options { get; }

    /// <summary>The run folder (absolute).</summary>
    public string Output { get; }

    public CheckpointManager Checkpoints { get; }

    /// <summary>The checkpoint folder the run resumes from, or null for a fresh run.</summary>
    public string? ResumeFrom { get; }

    /// <summary>Where the run stands at the start: the resumed checkpoint's state, or step 0.</summary>
    public TrainerState State { get; }

    /// <summary>The job this process is a rank of (the caller's, or a world of one started here).</summary>
    public DistributedContext Distributed { get; }

    /// <summary>This rank in the data-parallel world: its device and the collectives the objective and the trainer use.</summary>
    public DataParallelGroup Group { get; }

    /// <summary>This rank's replica of the model, ready to train.</summary>
    public M3Model Model { get; } = null!;

    public XlmrTokenizer Tokenizer { get; } = null!;

    public TrainData Data { get; } = null!;

    /// <summary>This rank's slice of every planned batch.</summary>
    public TrainDataLoader Loader => _loader!;

    /// <summary>The learning rate of every step; its <see cref="LrSchedule.TotalSteps"/> is the run's length.</summary>
    public LrSchedule Schedule { get; } = null!;

    /// <summary>Writes the model as a checkpoint folder loadable by HF transformers and FlagEmbedding, in the layout it came in (rank 0 only).</summary>
    public void SaveModel(string directory) =>
        M3CheckpointWriter.Save(Model, directory, _loaded!.Layout, TokenizerSource());

    /// <summary>
    /// Where the tokenizer files are copied from: the folder the model was loaded from, or, once a resumed run has pruned
    /// the checkpoint it started from (train.keep_last), its newest checkpoint, which holds them too.
    /// </summary>
    string TokenizerSource() =>
        Directory.Exists(_loaded!.Directory) ? _loaded.Directory : Checkpoints.Latest() ?? _loaded.Directory;

    /// <summary>Fails, naming the dataset, the verbs its rows are for and what the recipe needs, when a dataset holds rows of another kind.</summary>
    public void RequireRows(RowRequirement rows)
    {
        if (Data.Datasets.FirstOrDefault(d => d.Kind != rows.Kind) is { } other)
            throw new M3TrainException(RowShapes.Mismatch(other.Name, other.Kind, rows.Verb, rows.Needs));
    }

    void LogGlobalBatch(RunConfig config)
    {
        int world = Group.WorldSize, accumulation = config.Train.GradientAccumulationSteps;
        if (config.Data.TokensPerBatch is int budget)
            Log.Information("Global batch: {World} rank(s) x {Budget} tokens per rank = {Global} tokens per micro-batch, {Acc} micro-batch(es) per step",
                world, budget, (long)budget * world, accumulation);
        else
            Log.Information("Global batch: {World} rank(s) x data.batch_sizes [{PerRank}] = [{Global}] queries per micro-batch, {Acc} micro-batch(es) per step",
                world, string.Join(", ", config.Data.BatchSizes), string.Join(", ", config.Data.BatchSizes.Select(b => b * world)), accumulation);
    }

    /// <summary>The data settings a checkpoint was trained with (its config.yaml), or null where it holds none that reads.</summary>
    static DataConfig? SavedData(string checkpoint)
    {
        string path = Path.Combine(checkpoint, "config.yaml");
        try
        {
            return File.Exists(path) ? ConfigLoader.FromText<RunConfig>(File.ReadAllText(path), path).Data : null;
        }
        catch (Exception e) when (e is ConfigException or IOException)
        {
            Log.Warning("Could not read the batch sizes {Checkpoint} was trained with ({Reason}); the config's are used", path, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Per-rank batch sizes that keep the checkpointed run's global batch (its per-rank sizes in <paramref name="saved"/>
    /// on <paramref name="before"/> ranks) on <paramref name="now"/> ranks, so the batch plan and the position in it stay
    /// the same; null when <paramref name="data"/> already has them. The saved sizes count, not the config's: a run
    /// resumed on another number of ranks and then resumed again keeps the batch it started with.
    /// </summary>
    static DataConfig? KeepGlobalBatch(DataConfig data, DataConfig saved, int before, int now)
    {
        if (saved.TokensPerBatch is int budget)
        {
            if (budget * (long)before % now != 0)
                throw new M3TrainException($"resuming a {before}-rank run on {now}: data.tokens_per_batch {budget} x {before} does not split into {now} equal slices.");
            int scaled = (int)(budget * (long)before / now);
            if (data.TokensPerBatch == scaled) return null;
            Log.Warning("Resuming a {Before}-rank run on {Now} ranks: global batch kept, data.tokens_per_batch per rank {Old} -> {New}", before, now, data.TokensPerBatch, scaled);
            return data with { TokensPerBatch = scaled };
        }
        var sizes = saved.BatchSizes.Select(s => s * before).ToList();
        if (sizes.Any(s => s % now != 0))
            throw new M3TrainException($"resuming a {before}-rank run on {now}: global batch sizes {string.Join(", ", sizes)} do not split into {now} equal slices; resume on a number of ranks that divides them.");
        var perRank = sizes.Select(s => s / now).ToList();
        if (data.TokensPerBatch is null && data.BatchSizes.SequenceEqual(perRank)) return null;
        Log.Warning("Resuming a {Before}-rank run on {Now} ranks: global batch [{Global}] kept, per-rank data.batch_sizes [{Old}] -> [{New}]",
            before, now, string.Join(", ", sizes), string.Join(", ", data.BatchSizes), string.Join(", ", perRank));
        return data with { BatchSizes = perRank, TokensPerBatch = null };
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
    internal static void Freeze(M3Model model, RunConfig config)
    {
        var frozen = config.Train.FrozenParts();
        var heads = config.Model.Heads;
        if (frozen.Contains("encoder"))
            foreach (var p in model.Backbone.parameters()) p.requires_grad_(false);
        if (frozen.Contains("sparse") || !heads.Contains(M3Head.Sparse))
            foreach (var p in model.SparseHead.parameters()) p.requires_grad_(false);
        if (frozen.Contains("colbert") || !heads.Contains(M3Head.Colbert))
            foreach (var p in model.ColbertHead.parameters()) p.requires_grad_(false);
        if (model.LmHead is { } lm && frozen.Contains("encoder"))
            foreach (var p in lm.parameters()) p.requires_grad_(false);
    }

    public void Dispose()
    {
        _loader?.Dispose();
        Data?.Dispose();
        _loaded?.Dispose();
        _log?.Dispose();
        _ownContext?.Dispose();
    }
}
