using System.Text.Json;
using M3Train.Data;

namespace M3Train.Training;

/// <summary>Where a run stands, saved with every checkpoint as <c>trainer_state.json</c> so <c>--resume</c> continues exactly.</summary>
public sealed record TrainerState
{
    public const string FileName = "trainer_state.json";

    /// <summary>Optimizer steps done.</summary>
    public int Step { get; init; }
    /// <summary>Micro-batches done (drives self-distillation's start step and dropout seeds).</summary>
    public long MicroStep { get; init; }
    /// <summary>The total steps the schedule was built for.</summary>
    public int TotalSteps { get; init; }
    /// <summary>The data loader's position (the same on every replica).</summary>
    public LoaderState? Loader { get; init; }
    public int WorldSize { get; init; } = 1;
    /// <summary>Queries per global batch of the first bin, to keep the global batch when the device count changes.</summary>
    public int[]? GlobalBatchSizes { get; init; }
    public long SkippedSteps { get; init; }
    public long TokensSeen { get; init; }
    public double TrainSeconds { get; init; }

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void Save(string directory) => File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json));

    public static TrainerState Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
            throw new M3TrainException($"{directory}: not a training checkpoint (no {FileName}); --resume takes a folder under OUTPUT/checkpoints or 'latest'.");
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), Json)
                   ?? throw new M3TrainException($"{path}: empty training state.");
        }
        catch (JsonException e)
        {
            throw new M3TrainException($"{path}: unreadable training state: {e.Message}");
        }
    }
}
