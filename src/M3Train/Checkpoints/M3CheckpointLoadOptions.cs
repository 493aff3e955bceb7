namespace M3Train.Checkpoints;

/// <summary>How strictly <see cref="M3CheckpointLoader"/> matches a checkpoint to the model.</summary>
public sealed record M3CheckpointLoadOptions
{
    /// <summary>Accept model parameters the checkpoint lacks (they keep their fresh initialization). Default false: error listing them.</summary>
    public bool AllowMissing { get; init; }

    /// <summary>Accept checkpoint keys the model does not have (kept and written back on save). Default false: error listing them.</summary>
    public bool AllowUnexpected { get; init; }

    /// <summary>D' of freshly initialized multi-vector heads, when the checkpoint has no head files. Default null: the hidden size.</summary>
    public int? ColbertDim { get; init; }

    /// <summary>
    /// Give the model a masked-LM head even when the checkpoint has no <c>lm_head.*</c> (it is then freshly
    /// initialized, with a warning); RetroMAE pretraining needs one. Default false: a head only if the file has one.
    /// </summary>
    public bool WithLmHead { get; init; }

    /// <summary>
    /// Refuse a folder without both head files instead of starting the heads from random weights; a resumed run's
    /// checkpoint always has them, so their absence there means damage. Default false.
    /// </summary>
    public bool RequireHeads { get; init; }
}
