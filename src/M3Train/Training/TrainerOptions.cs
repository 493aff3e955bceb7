using M3Train.Distributed;

namespace M3Train.Training;

/// <summary>How a training run is started (the options of <c>m3train finetune</c> and <c>pretrain</c> beside the config).</summary>
public sealed record TrainerOptions
{
    /// <summary><c>--resume</c>: null starts fresh; "latest" or a checkpoint folder continues it.</summary>
    public string? Resume { get; init; }

    /// <summary>Recipe name for logs, the progress line and the summary (finetune, pretrain-retromae, ...).</summary>
    public string Recipe { get; init; } = "finetune";

    /// <summary>
    /// The job this process is a rank of, on the rank's device (<see cref="RankDevices.For"/>): m3train's training verbs
    /// start it and end it (<see cref="DistributedContext.Finish"/>, or <see cref="DistributedContext.Fail"/> with the
    /// error). Null: a world of one on the config's device, which the setup starts itself.
    /// </summary>
    public DistributedContext? Distributed { get; init; }

    /// <summary>
    /// Where a fresh run starts instead of step 0 at the beginning of the data: a stage of a staged run continues the data
    /// (loader position) and micro-step count of the stage before it, and records its stage. Its step must be 0; a resume
    /// ignores it (the checkpoint says where the run stands).
    /// </summary>
    public TrainerState? Start { get; init; }

    /// <summary>
    /// The rows the recipe trains on, checked as soon as the data is indexed, so data for another verb is reported as
    /// such rather than as whatever planning its batches runs into. Null: the objective checks them later.
    /// </summary>
    public RowRequirement? Rows { get; init; }
}
