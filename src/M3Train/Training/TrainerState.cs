using System.Text.Json;
using M3Train.Data;
using Serilog;

namespace M3Train.Training;

/// <summary>Where a run stands, saved with every checkpoint as <c>trainer_state.json</c> so <c>--resume</c> continues exactly.</summary>
public sealed record TrainerState
{
    public const string FileName = "trainer_state.json";

    /// <summary>The stage of a staged run the checkpoint belongs to ("2/3 heads-warmup"); null for a run without stages.</summary>
    public string? Stage { get; init; }
    /// <summary>Optimizer steps done.</summary>
    public int Step { get; init; }
    /// <summary>Micro-batches done (drives self-distillation's start step and dropout seeds).</summary>
    public long MicroStep { get; init; }
    /// <summary>The total steps the schedule was built for.</summary>
    public int TotalSteps { get; init; }
    /// <summary>The data loader's position (the same on every rank).</summary>
    public LoaderState? Loader { get; init; }
    /// <summary>Ranks the run had when this was saved (a resume on another number keeps the global batch).</summary>
    public int WorldSize { get; init; } = 1;
    /// <summary>Queries per global batch of the first bin, to keep the global batch when the device count changes.</summary>
    public int[]? GlobalBatchSizes { get; init; }
    public long SkippedSteps { get; init; }
    /// <summary>fp16's loss scaler (null in other precisions).</summary>
    public LossScalerState? LossScaler { get; init; }
    public long TokensSeen { get; init; }
    public double TrainSeconds { get; init; }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void Save(string directory) => File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json));

    public static TrainerState Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
            throw new M3TrainException($"{directory}: not a training checkpoint (no {FileName}); --resume takes a folder under OUTPUT/checkpoints or 'latest'.");
        TrainerState? state;
        try
        {
            state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), Json);
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or IOException)
        {
            throw Damaged(path, $"unreadable ({e.Message})", e);
        }
        if (state is null) throw Damaged(path, "empty");
        if (state.Problem() is { } problem) throw Damaged(path, problem);
        return state;
    }

    /// <summary>
    /// The run's total steps: <paramref name="requested"/> (from <c>train.max_steps</c>, or the epochs) for a fresh run;
    /// for a resumed one the checkpoint's schedule, or <paramref name="requested"/> when it differs and lies past
    /// the checkpoint's step, with the schedule rebuilt for it and a warning saying so.
    /// </summary>
    public int ResolveTotalSteps(int requested)
    {
        if (TotalSteps <= 0 || requested == TotalSteps) return requested;
        if (requested <= Step)
            throw new M3TrainException($"train.max_steps {requested}: the checkpoint is at step {Step} of {TotalSteps}, so nothing would be trained; " +
                                       $"set train.max_steps above {Step}, or leave it at {TotalSteps}.");
        Log.Warning("train.max_steps {Requested} differs from the checkpoint's {Total}: the run continues from step {Step} to {Requested}, " +
                     "with warmup and decay rebuilt for {Requested} steps", requested, TotalSteps, Step, requested);
        return requested;
    }

    string? Problem()
    {
        if (Step < 0 || MicroStep < 0 || SkippedSteps < 0 || TokensSeen < 0) return "negative counters";
        if (TotalSteps < Step) return $"step {Step} is past total_steps {TotalSteps}";
        if (WorldSize < 1) return $"world_size {WorldSize}";
        if (Step > 0 && Loader is null) return "no loader position";
        if (LossScaler is { } s && !(double.IsFinite(s.Scale) && s.Scale >= Training.LossScaler.MinScale && s.StepsSinceOverflow >= 0 && s.OverflowSteps >= 0))
            return $"loss_scaler {s}";
        return null;
    }

    static M3TrainException Damaged(string path, string problem, Exception? inner = null)
    {
        string message = $"{path}: {problem}; the checkpoint is damaged. Resume from an earlier one (--resume DIR), or with --resume latest, " +
                         "which skips checkpoints whose files do not match their manifest.";
        return inner is null ? new M3TrainException(message) : new M3TrainException(message, inner);
    }
}
